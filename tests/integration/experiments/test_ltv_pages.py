"""An LTV metric from readout to page: the results page titles it in plain words and says which
users it counts, with the mature users in its Users column; the JSON and CSV exports carry
its day."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import ResultSnapshot
from flags.models import Flag
from tests.integration.experiments.conftest import METRICS, create_experiment
from tests.integration.experiments.simulation import simulate
from tests.integration.experiments.test_readout_correctness import _ingest

pytestmark = pytest.mark.django_db


def test_results_page__ltv_metric__titled_by_its_day_with_mature_users_and_exported(
    actor: Actor, checkout_flag: Flag, production: Environment, admin_client: Client,
) -> None:
    services.metric_create(actor=actor, key="purchase", **METRICS["purchase"])
    services.metric_create(actor=actor, key="ltv-d7", name="Revenue", **METRICS["ltv-d7"])
    experiment = create_experiment(actor, checkout_flag, production, ["purchase", "ltv-d7"])
    _ingest(production, simulate(n_units=300, now=datetime.now(tz=UTC), seed=7).items)
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
    ltv = next(m for m in snapshot.metrics if m["key"] == "ltv-d7")
    mature = [a["users"] for a in ltv["variations"]]
    assert ltv["day"] == 7 and 0 < sum(mature) < (snapshot.units or 0)

    html = admin_client.get(f"/experiments/{experiment.key}/").content.decode()
    row = html.split('data-metric="ltv-d7"')[1].split("</tr>")[0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))
    assert "Revenue per user by day 7" in text
    assert "counts users exposed 7 days or more before the readout" in text
    assert f"{mature[0]:,} / {mature[1]:,}" in text

    exported = admin_client.get(f"/experiments/{experiment.key}/export.json").json()
    assert next(m for m in exported["metrics"] if m["key"] == "ltv-d7")["day"] == 7
    rows = list(csv.DictReader(io.StringIO(admin_client.get(f"/experiments/{experiment.key}/export.csv")
                                           .content.decode())))
    titled = {(r["metric"], r["metric_title"], r["metric_day"]) for r in rows}
    assert ("ltv-d7", "Revenue per user by day 7", "7") in titled and ("purchase", "purchase", "") in titled
