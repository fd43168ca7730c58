"""Readouts of real data, through the events and exposures path on PostgreSQL: a slice value
seen in one arm only and units without attributes give `no_users` on their rows, and an
analysis whose stored data cannot be analysed costs only its own rows, which say why, in the
results API and on the result page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import Metric, ResultSnapshot
from flags.models import Flag
from tests.integration.experiments.conftest import create_experiment
from tests.integration.pages import factories

pytestmark = [pytest.mark.django_db]


def _traffic(n: int) -> list[dict[str, Any]]:
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    for i in range(n):
        variation = ("control", "treatment")[i % 2]
        seen = now - timedelta(hours=2 + i % 48)
        items.append({"id": f"x{i}", "type": "exposure", "unit_id": f"u{i}", "experiment": "checkout-test",
                      "variation": variation, "timestamp": seen.isoformat(),
                      "attributes": {"country": ("US", "DE")[i % 3 == 0]}})
        if i % 5 < 2:
            items.append({"id": f"p{i}", "type": "event", "unit_id": f"u{i}", "name": "purchase",
                          "value": 10 + i % 7, "timestamp": (seen + timedelta(minutes=30)).isoformat()})
    return items


def _exposure(client_id: str, unit: str, variation: str, **attributes: str) -> dict[str, Any]:
    seen = datetime.now(tz=UTC) - timedelta(hours=3)
    item: dict[str, Any] = {"id": client_id, "type": "exposure", "unit_id": unit, "experiment": "checkout-test",
                            "variation": variation, "timestamp": seen.isoformat()}
    if attributes:
        item["attributes"] = attributes
    return item


def _ingest(environment: Environment, items: list[dict[str, Any]]) -> None:
    result = services.events_ingest(environment=environment, items=items)
    assert not result.rejected, result.rejected[:3]


def test_readout__slice_value_in_one_arm_only__no_users_on_that_row_rest_computed(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, ["purchase", "revenue", "ctr"],
                                   slice_attributes=["country"], cuped=True)
    # One unit of control in a country no one else is in, one unit of treatment without attributes.
    _ingest(production, [*_traffic(200), _exposure("zz", "lone", "control", country="ZZ"),
                         _exposure("bare", "bare", "treatment")])

    snapshot = services.readout_run(experiment_id=experiment.pk)

    assert snapshot is not None
    assert snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot.error
    slices = {s["value"]: s for s in snapshot.slices}
    assert {"US", "DE", "ZZ", "(none)"} <= set(slices)
    for value, empty_arm in (("ZZ", 1), ("(none)", 0)):
        for metric in slices[value]["metrics"]:
            assert metric["variations"][empty_arm]["users"] == 0
            assert [c["error"] for c in metric["comparisons"]] == ["no_users"], (value, metric)
            assert "error" not in metric
    us = next(m for m in slices["US"]["metrics"] if m["key"] == "purchase")
    assert us["comparisons"][0]["error"] is None and us["comparisons"][0]["estimate"] is not None
    assert "analysis_errors" not in {w["code"] for w in snapshot.warnings}


def test_readout__stored_value_not_a_number__its_rows_say_so_rest_computed(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric],
    write_client: APIClient, client: Client,
) -> None:
    from experiments import catalog

    catalog.metric_create(actor=actor, key="basket", kind="mean", event_name="purchase", window_hours=72)
    experiment = create_experiment(actor, checkout_flag, production, ["purchase", "basket", "clicks"],
                                   slice_attributes=["country"])
    _ingest(production, _traffic(300))
    # A row the checks of today refuse, as an older release or a bulk load may have left behind.
    with connection.cursor() as cur:
        cur.execute("UPDATE experiments_event SET value = 'NaN' WHERE environment_id = %s AND client_id = 'p6'",
                    [production.pk])
        assert cur.rowcount == 1

    snapshot = services.readout_run(experiment_id=experiment.pk)

    assert snapshot is not None
    assert snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot.error
    # Unit u6 is a control unit in the DE slice: the basket rows overall and in DE carry the
    # reason; every other analysis is computed.
    metrics_by_key = {m["key"]: m for m in snapshot.metrics}
    reason = "control: main_sum must be finite"
    assert metrics_by_key["basket"]["error"] == reason
    assert {c["error"] for c in metrics_by_key["basket"]["fixed"]} == {"invalid_input"}
    assert "error" not in metrics_by_key["clicks"]
    assert "error" not in metrics_by_key["purchase"]
    assert metrics_by_key["purchase"]["comparisons"][0]["estimate"] is not None
    slices = {s["value"]: {m["key"]: m for m in s["metrics"]} for s in snapshot.slices}
    assert slices["DE"]["basket"]["error"] == reason
    assert "error" not in slices["US"]["basket"]
    assert slices["US"]["basket"]["comparisons"][0]["estimate"] is not None
    warning = next(w for w in snapshot.warnings if w["code"] == "analysis_errors")
    assert f"basket: {reason}" in warning["message"] and f"basket (country = DE): {reason}" in warning["message"]

    body = write_client.get("/api/v1/experiments/checkout-test/results").json()
    latest = {m["key"]: m for m in body["latest"]["metrics"]}
    assert latest["basket"]["error"] == reason
    assert latest["purchase"].get("error") is None
    schema = write_client.get("/api/schema/?format=json").json()
    assert "error" in schema["components"]["schemas"]["MetricReadout"]["properties"]

    client.force_login(factories.staff_user("analyst"))
    html = client.get("/experiments/checkout-test/?slice=country&slice_metric=basket").content.decode()
    assert f"no result: the data could not be analysed ({reason})" in html
    assert "could not be computed" in html


def test_events__value_whose_square_overflows__refused_and_readouts_go_on(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    from experiments import catalog
    from tests.integration.experiments.conftest import post_events, sdk_client

    catalog.metric_create(actor=actor, key="basket", kind="mean", event_name="purchase", window_hours=72)
    experiment = create_experiment(actor, checkout_flag, production, ["purchase", "basket"],
                                   slice_attributes=["country"])
    _ingest(production, _traffic(100))
    seen = datetime.now(tz=UTC) - timedelta(hours=1)
    huge = [{"id": f"h{k}", "type": "event", "unit_id": "u0", "name": "purchase", "value": value,
             "timestamp": seen.isoformat()} for k, value in enumerate((1e200, -1e16))]
    fine = {"id": "ok", "type": "event", "unit_id": "u1", "name": "purchase", "value": 1e15,
            "timestamp": seen.isoformat()}

    response = post_events(sdk_client(production), [*huge, fine])

    assert response.status_code == 202, response.content
    body = response.json()
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(0, "invalid_value"), (1, "invalid_value")]
    assert "1e+15" in body["rejected"][0]["message"]
    assert body["accepted"] == 1
    snapshot = services.readout_run(experiment_id=experiment.pk)
    assert snapshot is not None and snapshot.status == ResultSnapshot.Status.SUCCESS, snapshot and snapshot.error
