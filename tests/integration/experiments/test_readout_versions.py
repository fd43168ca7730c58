"""A readout stored in each document version, read by every reader: the results API (its
JSON checked against the OpenAPI schema generated from the readout types), the result pages,
the exports and the admin."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from schemathesis.specs.openapi.checks import response_schema_conformance

from audit.types import Actor
from base import tokens
from base.models import ApiToken
from experiments.documents import snapshot_summary
from experiments.models import Experiment, ResultSnapshot
from experiments.readout import READOUT_FIELDS, SCHEMA_VERSION, readout_from_json, readout_to_json
from tests.integration.pages import factories
from tests.openapi_wsgi import schema_over_wsgi
from tests.unit.experiments.readout.stored import VERSIONS

pytestmark = pytest.mark.django_db

PLAN = factories.ExperimentPlan(
    key="versions", metrics=[factories.MetricPlan("buy", "conversion", "primary"),
                             factories.MetricPlan("errors", "count", "guardrail", direction="lower")],
    slices={"country": ("DE", "FR")},
)


def _store(experiment: Experiment, doc: dict[str, Any]) -> ResultSnapshot:
    now = timezone.now()
    columns = {name: doc[name] for name in READOUT_FIELDS if name in doc}
    return ResultSnapshot.objects.create(
        experiment=experiment, phase=experiment.phases.first(), status=ResultSnapshot.Status.SUCCESS,
        attempts=1, started_at=now, finished_at=now, analysis_end=now, rollup_mode="full", **columns,
    )


@pytest.fixture(params=list(VERSIONS))
def stored(request: pytest.FixtureRequest, db: Any) -> tuple[Experiment, ResultSnapshot, dict[str, Any]]:
    doc = VERSIONS[request.param][0]()
    experiment = factories.create_experiment(PLAN)
    return experiment, _store(experiment, doc), doc


def _conforms(experiment: Experiment, user: User) -> None:
    """The results API's response for the experiment matches the OpenAPI schema of the service."""
    _, token = tokens.api_token_create(actor=Actor.system(), user=user, name="schema", scope=ApiToken.Scope.READ)
    with schema_over_wsgi(r"/results$") as schema:
        case = schema["/api/v1/experiments/{key}/results"]["GET"].Case(path_parameters={"key": experiment.key})
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        case.validate_response(response, checks=[response_schema_conformance])


def test_results_api__every_version__current_shape_matching_the_schema(
    stored: tuple[Experiment, ResultSnapshot, dict[str, Any]], read_client: APIClient, admin_user: User
) -> None:
    experiment, snapshot, doc = stored
    body = read_client.get(f"/api/v1/experiments/{experiment.key}/results").json()
    latest = body["latest"]
    current = readout_to_json(readout_from_json(doc))
    assert latest["id"] == snapshot.pk and latest["schema_version"] == SCHEMA_VERSION
    assert latest["metrics"] == current["metrics"] and latest["slices"] == current["slices"]
    assert all(isinstance(m["sequential"], list) for m in latest["metrics"])
    assert latest["guardrail_status"] == "ok" and body["latest_success"] is None
    assert [(p["metric"], p["variation"]) for p in body["history"][-1]["headline"]] == [
        ("buy", "treatment"), ("errors", "treatment")]
    _conforms(experiment, admin_user)


def test_results_api__failed_and_queued_runs__empty_readout_fields(read_client: APIClient, admin_user: User) -> None:
    experiment = factories.create_experiment(PLAN)
    phase = experiment.phases.first()
    ResultSnapshot.objects.create(experiment=experiment, phase=phase, status=ResultSnapshot.Status.FAILED,
                                  error="ValueError: no", finished_at=timezone.now())
    ResultSnapshot.objects.create(experiment=experiment, phase=phase)
    body = read_client.get(f"/api/v1/experiments/{experiment.key}/results").json()
    latest = body["latest"]
    assert latest["status"] == "failed" and latest["error"] == "ValueError: no"
    assert (latest["settings"], latest["inputs"], latest["metrics"], latest["units"], latest["guardrail_status"]) == (
        {}, {}, [], None, None)
    assert body["pending"]["status"] == "queued" and body["pending"]["headline"] == []
    _conforms(experiment, admin_user)


def test_pages_exports_admin__every_version__read_through_the_contract(
    stored: tuple[Experiment, ResultSnapshot, dict[str, Any]], client: Client, admin_client: Client
) -> None:
    experiment, snapshot, doc = stored
    client.force_login(factories.staff_user("analyst"))
    html = client.get(f"/experiments/{experiment.key}/?slice=country").content.decode()
    assert 'data-metric="buy" data-variation="treatment" data-tone="good"' in html
    assert 'data-metric="errors" data-variation="treatment" data-tone="neutral"' in html
    assert '<tr data-slice="DE"' in html
    listing = client.get("/experiments/").content.decode().split(f'data-experiment="{experiment.key}"')[1]
    assert "Treatment: +" in listing.split("</tr>")[0]
    rows = list(csv.DictReader(io.StringIO(client.get(f"/experiments/{experiment.key}/export.csv").content.decode())))
    headline = [r for r in rows if r["headline"] == "True" and not r["slice_attribute"]]
    assert {(r["metric"], r["analysis"], r["difference_type"]) for r in headline} == {
        ("buy", "sequential", "relative"), ("errors", "sequential", "relative")}
    sliced = [r for r in rows if r["slice_attribute"] == "country" and r["analysis"] != "heterogeneity"]
    assert {r["slice_value"] for r in sliced} == {s["value"] for s in doc["slices"]}
    export = json.loads(client.get(f"/experiments/{experiment.key}/export.json").content)
    assert export["schema_version"] == SCHEMA_VERSION
    assert export["metrics"] == readout_to_json(readout_from_json(doc))["metrics"]
    panel = admin_client.get(f"/admin/experiments/experiment/{experiment.pk}/change/").content.decode()
    assert "<td>buy</td><td>primary</td><td>treatment</td>" in panel
    summary = snapshot_summary(snapshot)
    assert summary.headline[0].estimate == readout_from_json(doc).metrics[0].comparisons[0].estimate



def test_results_api__longer_history__same_number_of_queries(read_client: APIClient, db: Any) -> None:
    experiment = factories.create_experiment(PLAN)
    doc = VERSIONS["v2"][0]()
    read_client.get(f"/api/v1/experiments/{experiment.key}/results")  # the token's first use is recorded
    counts = []
    for _ in range(2):
        for _ in range(3):
            _store(experiment, doc)
        with CaptureQueriesContext(connection) as queries:
            body = read_client.get(f"/api/v1/experiments/{experiment.key}/results").json()
        counts.append(len(queries.captured_queries))
        # The history reads the headline lists only: the large columns stay in the database.
        assert not any('"slices"' in q["sql"] and "LIMIT 100" in q["sql"] for q in queries.captured_queries)
    assert len(body["history"]) == 6 and counts[0] == counts[1]
