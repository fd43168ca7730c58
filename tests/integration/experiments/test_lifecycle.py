"""Metric catalog and experiment lifecycle through the management API: create, start, phases,
stop with a decision, archive; every transition audited; the flag rule follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.exposures import ExposureInput
from experiments.models import Assignment, Experiment, Metric, Phase, ResultSnapshot
from flags.models import Flag, FlagState, Rule
from traffic.models import Layer

pytestmark = pytest.mark.django_db


def _create(client: APIClient, **body: Any) -> Any:
    payload = {
        "key": "checkout-test", "flag": "checkout", "environment": "production",
        "hypothesis": "A shorter checkout converts more.",
        "variations": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        "metrics": [{"metric": "purchase", "role": "primary"}, {"metric": "errors", "role": "guardrail"}],
        **body,
    }
    return client.post("/api/v1/experiments", payload, format="json")


@pytest.fixture
def ready(checkout_flag: Flag, metrics: dict[str, Metric]) -> None:
    return None


def test_metric_create__every_kind__201_and_audited(write_client: APIClient) -> None:
    bodies = [
        {"key": "m-conv", "kind": "conversion", "event_name": "signup", "window_hours": 24},
        {"key": "m-gmv", "kind": "mean", "event_name": "order", "capping": "percentile", "capping_value": 0.99},
        {"key": "m-ctr", "kind": "ratio", "event_name": "click", "denominator_event": "impression"},
        {"key": "m-ret", "kind": "retention", "event_name": "session", "retention_day": 7},
        {"key": "m-fun", "kind": "funnel", "funnel_steps": ["a", "b", "c"], "window_hours": 72},
        {"key": "m-cnt", "kind": "count", "event_name": "search", "capping": "absolute", "capping_value": 20},
    ]
    for body in bodies:
        response = write_client.post("/api/v1/metrics", body, format="json")
        assert response.status_code == 201, response.json()
    assert write_client.get("/api/v1/metrics").json()["count"] == 6
    assert AuditEntry.objects.filter(action="metric.create").count() == 6
    assert write_client.get("/api/v1/metrics/m-fun").json()["event_name"] == "c"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "ratio", "event_name": "click"}, "denominator_event"),
        ({"kind": "funnel", "funnel_steps": ["a"]}, "funnel_steps"),
        ({"kind": "retention", "event_name": "s"}, "retention_day"),
        ({"kind": "conversion", "event_name": "s", "capping": "absolute", "capping_value": 3}, "capping"),
        ({"kind": "mean", "event_name": "s", "capping": "percentile", "capping_value": 1.5}, "capping_value"),
        ({"kind": "mean"}, "event_name"),
    ],
)
def test_metric_create__invalid__400_naming_the_field(
    write_client: APIClient, body: dict[str, Any], field: str
) -> None:
    response = write_client.post("/api/v1/metrics", {"key": "bad", **body}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"]
    assert not Metric.objects.exists()


def test_metric_update__read_token__403(read_client: APIClient, metrics: dict[str, Metric]) -> None:
    assert read_client.patch("/api/v1/metrics/purchase", {"window_hours": 10}, format="json").status_code == 403


def test_experiment_lifecycle__create_start_stop_ship_archive__flag_follows_and_audited(
    write_client: APIClient, ready: None, production: Environment
) -> None:
    created = _create(write_client)
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "draft"
    assert not Rule.objects.exists()

    started = write_client.post("/api/v1/experiments/checkout-test/start")
    assert started.status_code == 200, started.json()
    body = started.json()
    assert body["status"] == "running"
    assert [p["number"] for p in body["phases"]] == [1]
    rule = Rule.objects.get(uid=body["rule_id"])
    assert rule.kind == "experiment" and rule.experiment_key == "checkout-test"
    assert rule.variations == ["control", "treatment"] and rule.weights == [0.5, 0.5]
    assert rule.seed == "checkout-test" and rule.phase == "1"

    stopped = write_client.post("/api/v1/experiments/checkout-test/stop",
                                {"decision": "ship", "variation": "treatment", "note": "wins"}, format="json")
    assert stopped.status_code == 200, stopped.json()
    assert stopped.json()["status"] == "stopped" and stopped.json()["shipped_variation"] == "treatment"
    assert not Rule.objects.exists()
    state = FlagState.objects.get(flag__key="checkout", environment=production)
    assert state.default_variant == "treatment"
    assert Phase.objects.get().ended_at is not None
    # A final readout is queued with the stop.
    assert ResultSnapshot.objects.filter(trigger="stop", status="queued").count() == 1

    archived = write_client.post("/api/v1/experiments/checkout-test/archive")
    assert archived.json()["status"] == "archived"
    actions = list(AuditEntry.objects.filter(object_type="experiment").order_by("id").values_list("action", flat=True))
    assert actions == ["experiment.create", "experiment.start", "experiment.stop", "experiment.archive"]


def test_experiment_stop__rollback__rule_removed_and_default_unchanged(
    write_client: APIClient, ready: None, production: Environment
) -> None:
    _create(write_client)
    write_client.post("/api/v1/experiments/checkout-test/start")
    response = write_client.post("/api/v1/experiments/checkout-test/stop", {"decision": "rollback"}, format="json")
    assert response.json()["decision"] == "rollback"
    assert FlagState.objects.get(flag__key="checkout", environment=production).default_variant == "control"
    assert not Rule.objects.exists()


def test_experiment_stop__ship_without_variation__400(write_client: APIClient, ready: None) -> None:
    _create(write_client)
    write_client.post("/api/v1/experiments/checkout-test/start")
    response = write_client.post("/api/v1/experiments/checkout-test/stop", {"decision": "ship"}, format="json")
    assert response.status_code == 400
    assert "variation" in response.json()["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variations": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.3}]}, "variations"),
        ({"variations": [{"key": "control", "weight": 1.0}]}, "variations"),
        ({"metrics": [{"metric": "revenue", "role": "secondary"}]}, "metrics"),
    ],
)
def test_experiment_start__not_ready__400_and_nothing_served(
    write_client: APIClient, ready: None, body: dict[str, Any], field: str
) -> None:
    _create(write_client, **body)
    response = write_client.post("/api/v1/experiments/checkout-test/start")
    assert response.status_code == 400
    assert response.json()["code"] == "experiment_not_ready"
    assert field in response.json()["details"]
    assert not Rule.objects.exists()
    assert Experiment.objects.get().status == "draft"


def test_experiment_create__unknown_variant_or_metric__400(write_client: APIClient, ready: None) -> None:
    response = _create(write_client, variations=[{"key": "purple", "weight": 1.0}],
                       metrics=[{"metric": "nope", "role": "primary"}])
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"variations[0].key", "metrics[0].metric"}


def test_experiment_start__overlapping_layer_range__400_then_free_range_starts(
    write_client: APIClient, ready: None, actor: Actor
) -> None:
    Layer.objects.create(key="checkout-layer", name="Checkout")
    _create(write_client, key="first", layer="checkout-layer", range_start=0.0, range_end=0.5)
    assert write_client.post("/api/v1/experiments/first/start").status_code == 200
    _create(write_client, key="second", layer="checkout-layer", range_start=0.4, range_end=0.8)
    response = write_client.post("/api/v1/experiments/second/start")
    assert response.status_code == 400
    assert "first" in response.json()["details"]["range_start"][0]
    write_client.patch("/api/v1/experiments/second", {"range_start": 0.5, "range_end": 1.0}, format="json")
    assert write_client.post("/api/v1/experiments/second/start").status_code == 200
    namespaces = sorted(tuple(r.namespace or ()) for r in Rule.objects.all())
    assert namespaces == [("checkout-layer", 0.0, 0.5), ("checkout-layer", 0.5, 1.0)]


def test_experiment_update__weights_change_while_running__new_phase_and_rule_updated(
    write_client: APIClient, ready: None
) -> None:
    _create(write_client)
    write_client.post("/api/v1/experiments/checkout-test/start")
    response = write_client.patch(
        "/api/v1/experiments/checkout-test",
        {"variations": [{"key": "control", "weight": 0.2}, {"key": "treatment", "weight": 0.8}]}, format="json",
    )
    assert response.status_code == 200, response.json()
    phases = response.json()["phases"]
    assert [p["number"] for p in phases] == [1, 2]
    assert phases[0]["ended_at"] is not None and phases[1]["weights"] == [0.2, 0.8]
    rule = Rule.objects.get()
    assert rule.weights == [0.2, 0.8] and rule.phase == "2"


def test_experiment_update__description_while_running__same_phase(write_client: APIClient, ready: None) -> None:
    _create(write_client)
    write_client.post("/api/v1/experiments/checkout-test/start")
    response = write_client.patch("/api/v1/experiments/checkout-test", {"hypothesis": "New words"}, format="json")
    assert response.status_code == 200
    assert len(response.json()["phases"]) == 1


def test_experiment_update__hash_attribute_while_running__409(write_client: APIClient, ready: None) -> None:
    _create(write_client)
    write_client.post("/api/v1/experiments/checkout-test/start")
    response = write_client.patch("/api/v1/experiments/checkout-test", {"hash_attribute": "device"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "experiment_locked"


def test_experiment_archive__running__409(write_client: APIClient, ready: None) -> None:
    _create(write_client)
    write_client.post("/api/v1/experiments/checkout-test/start")
    assert write_client.post("/api/v1/experiments/checkout-test/archive").status_code == 409


def test_experiment_refresh__not_started__400(write_client: APIClient, ready: None) -> None:
    _create(write_client)
    response = write_client.post("/api/v1/experiments/checkout-test/refresh")
    assert response.status_code == 400
    assert response.json()["code"] == "experiment_not_started"


def test_experiment_refresh__running__202_and_one_queued_snapshot(
    write_client: APIClient, experiment: Experiment
) -> None:
    first = write_client.post("/api/v1/experiments/checkout-test/refresh")
    second = write_client.post("/api/v1/experiments/checkout-test/refresh")
    assert first.status_code == 202
    assert first.json()["snapshot"] == second.json()["snapshot"]
    assert ResultSnapshot.objects.filter(status="queued").count() == 1
    results = write_client.get("/api/v1/experiments/checkout-test/results").json()
    assert results["latest"] is None and results["pending"]["status"] == "queued"


def test_experiment_get__unknown__404(read_client: APIClient) -> None:
    response = read_client.get("/api/v1/experiments/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "experiment_not_found"


def test_exposures_record__serving_layer_mappings__bulk_and_idempotent(experiment: Experiment) -> None:
    now = datetime.now(tz=UTC)
    batch = [
        {"environment": "production", "experiment": "checkout-test", "variation": "control", "unit_id": f"u{i}",
         "timestamp": now - timedelta(minutes=i), "attributes": {"country": "DE"}}
        for i in range(50)
    ]
    batch.append({"environment": "production", "experiment": "nope", "variation": "control", "unit_id": "x",
                  "timestamp": now})
    assert services.exposures_record(exposures=batch) == 50
    assert services.exposures_record(exposures=batch) == 0
    assert Assignment.objects.filter(experiment=experiment).count() == 50


def test_exposures_record__dataclass_inputs_with_environment_id__recorded(
    experiment: Experiment, production: Environment
) -> None:
    now = datetime.now(tz=UTC)
    items = [ExposureInput(experiment="checkout-test", variation="treatment", unit_id="u1", timestamp=now),
             ExposureInput(experiment="checkout-test", variation="control", unit_id="u1", timestamp=now)]
    assert services.exposures_record(environment_id=production.pk, exposures=items) == 2
    assert Assignment.objects.get().multiple is True
