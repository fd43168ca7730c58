"""Ramping a running experiment through the management API, the admin and the scheduler.

Raising coverage continues the phase and never moves a unit already in the experiment (checked
through OFREP and /api/v1/evaluate before and after); a new split or a lower coverage starts a
new phase; scheduled steps are applied by the beat task, audited; bad input changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from experiments import services
from experiments.models import Experiment, Metric, Phase, RampStep
from experiments.ramp import ramp_steps_apply_due
from experiments.tasks import experiment_ramp_steps_task
from flags.models import Flag, Rule
from tests.integration.conftest_admin import errors_of, read_form
from tests.integration.experiments.conftest import create_experiment
from tests.integration.serving.conftest import (
    sdk_post,
    serving_state,  # noqa: F401 - a fixture (SDK caches per test)
)

pytestmark = pytest.mark.django_db

UNITS = 600
OFREP_UNITS = 200
URL = "/api/v1/experiments/checkout-test/ramp"


@pytest.fixture
def ten_percent(actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]) -> Experiment:
    return create_experiment(actor, checkout_flag, production, ["purchase"], coverage=0.1)


def _evaluate(client: Client, environment: Environment) -> dict[str, str]:
    """Unit -> variation for the units /api/v1/evaluate places in the experiment (not tracked)."""
    placed: dict[str, str] = {}
    for i in range(UNITS):
        body = sdk_post(client, "/api/v1/evaluate", {"context": {"targetingKey": f"u-{i}"}, "flags": ["checkout"],
                                                     "track": False}, environment.client_key).json()
        experiment = body["flags"]["checkout"]["experiment"]
        if experiment is not None and experiment["inExperiment"]:
            placed[f"u-{i}"] = experiment["variation"]
    return placed


def _ofrep(client: Client, environment: Environment) -> dict[str, str]:
    """Unit -> variant for the units OFREP answers with a SPLIT (in the experiment)."""
    placed: dict[str, str] = {}
    for i in range(OFREP_UNITS):
        body = sdk_post(client, "/ofrep/v1/evaluate/flags/checkout", {"context": {"targetingKey": f"u-{i}"}},
                        environment.client_key).json()
        if body["reason"] == "SPLIT":
            placed[f"u-{i}"] = body["variant"]
    return placed


def _phases(experiment: Experiment) -> list[int]:
    return list(Phase.objects.filter(experiment=experiment).order_by("number").values_list("number", flat=True))


def test_ramp__coverage_raised_over_the_api__same_phase_and_no_unit_moves(
    client: Client, write_client: APIClient, ten_percent: Experiment, production: Environment
) -> None:
    before = _evaluate(client, production)
    before_ofrep = _ofrep(client, production)
    assert 0.05 * UNITS < len(before) < 0.15 * UNITS
    assert set(before.values()) == {"control", "treatment"}
    assert before_ofrep == {u: v for u, v in before.items() if int(u[2:]) < OFREP_UNITS}

    preview = write_client.post(URL, {"coverage": 0.5, "dry_run": True}, format="json")
    assert preview.status_code == 200, preview.json()
    assert preview.json()["change"]["new_phase"] is False and preview.json()["change"]["applied"] is False
    assert "phase continues" in preview.json()["change"]["words"]
    assert Experiment.objects.get(pk=ten_percent.pk).coverage == 0.1  # a dry run changes nothing

    for coverage, low, high in ((0.5, 0.4, 0.6), (1.0, 1.0, 1.0)):
        response = write_client.post(URL, {"coverage": coverage}, format="json")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["coverage"] == coverage and body["phase"] == 1 and body["change"]["new_phase"] is False
        after = _evaluate(client, production)
        assert low * UNITS <= len(after) <= high * UNITS
        # Every unit that was in keeps its variation.
        assert {u: after.get(u) for u in before} == before
        after_ofrep = _ofrep(client, production)
        assert {u: after_ofrep.get(u) for u in before_ofrep} == before_ofrep
        before, before_ofrep = after, after_ofrep

    assert _phases(ten_percent) == [1]
    phase = Phase.objects.get(experiment=ten_percent)
    assert phase.ended_at is None and phase.coverage == 1.0
    rule = Rule.objects.get(experiment_key="checkout-test")
    assert rule.coverage == 1.0 and rule.phase == "1"
    assert AuditEntry.objects.filter(action="experiment.ramp", object_key="checkout-test").count() == 2


def test_ramp__new_split__new_phase_said_before_and_done(
    client: Client, write_client: APIClient, ten_percent: Experiment, production: Environment
) -> None:
    preview = write_client.post(URL, {"weights": [0.2, 0.8], "dry_run": True}, format="json").json()
    assert preview["change"]["new_phase"] is True and "new phase" in preview["change"]["words"]
    assert _phases(ten_percent) == [1]
    response = write_client.post(URL, {"weights": [0.2, 0.8], "coverage": 0.5}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["phase"] == 2 and response.json()["weights"] == [0.2, 0.8]
    assert _phases(ten_percent) == [1, 2]
    assert Phase.objects.get(experiment=ten_percent, number=1).ended_at is not None
    assert Phase.objects.get(experiment=ten_percent, number=2).reason.startswith("Coverage rises")
    rule = Rule.objects.get(experiment_key="checkout-test")
    assert (rule.phase, rule.weights, rule.coverage) == ("2", [0.2, 0.8], 0.5)


def test_ramp__lower_coverage__new_phase(write_client: APIClient, ten_percent: Experiment) -> None:
    write_client.post(URL, {"coverage": 0.5}, format="json")
    response = write_client.post(URL, {"coverage": 0.2}, format="json")
    assert response.status_code == 200 and response.json()["change"]["new_phase"] is True
    assert _phases(ten_percent) == [1, 2]


def test_ramp__admin_coverage_field__raise_continues_the_phase_lower_starts_one(
    admin_client: Client, ten_percent: Experiment
) -> None:
    change_url = reverse("admin:experiments_experiment_change", args=[ten_percent.pk])
    data = read_form(admin_client, change_url, "experiment_form")
    data["coverage"] = "0.5"
    response = admin_client.post(change_url, data)
    assert response.status_code == 302, errors_of(response)
    assert _phases(ten_percent) == [1]
    assert Rule.objects.get(experiment_key="checkout-test").coverage == 0.5
    data = read_form(admin_client, change_url, "experiment_form")
    data["coverage"] = "0.3"
    assert admin_client.post(change_url, data).status_code == 302
    assert _phases(ten_percent) == [1, 2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"coverage": 0}, "coverage"),
        ({"coverage": 1.5}, "coverage"),
        ({"coverage": "half"}, "coverage"),
        ({"coverage": True}, "coverage"),
        ({"coverage": 0.1}, "coverage"),  # unchanged
        ({"weights": [0.5, 0.3]}, "weights"),
        ({"weights": [1.0]}, "weights"),
        ({}, "coverage"),
        ({"coverage": 0.5, "steps": [{"coverage": 0.6, "apply_at": "2099-01-01T00:00:00Z"}]}, "steps"),
        ({"steps": []}, "steps"),
        ({"steps": [{"coverage": 0.5, "apply_at": "2001-01-01T00:00:00Z"}]}, "steps[0].apply_at"),
        ({"steps": [{"coverage": 0.05, "apply_at": "+1h"}]}, "steps[0].coverage"),
        ({"steps": [{"coverage": 0.5, "apply_at": "+2h"}, {"coverage": 0.4, "apply_at": "+3h"}]},
         "steps[1].coverage"),
        ({"steps": [{"coverage": 0.5, "apply_at": "+2h"}, {"coverage": 0.6, "apply_at": "+1h"}]},
         "steps[1].apply_at"),
        ({"steps": [{"coverage": 0.5, "apply_at": "+9000h"}]}, "steps[0].apply_at"),
        ({"steps": [{"coverage": 0.1 + i / 20, "apply_at": f"+{i + 1}h"} for i in range(11)]}, "steps"),
        ({"steps": [{"coverage": 0.5}]}, "steps"),
        ({"coverage": 0.5, "speed": "fast"}, "speed"),
    ],
)
def test_ramp__bad_input__400_naming_the_field_and_nothing_changes(
    write_client: APIClient, ten_percent: Experiment, body: dict[str, Any], field: str
) -> None:
    now = timezone.now()
    for step in body.get("steps", []):
        if str(step.get("apply_at", "")).startswith("+"):
            step["apply_at"] = (now + timedelta(hours=int(step["apply_at"][1:-1]))).isoformat()
    audit_before = AuditEntry.objects.count()
    response = write_client.post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert set(response.json()) == {"code", "message", "details"}
    assert field in response.json()["details"], response.json()
    assert AuditEntry.objects.count() == audit_before
    assert Experiment.objects.get(pk=ten_percent.pk).coverage == 0.1
    assert not RampStep.objects.exists()
    assert _phases(ten_percent) == [1]


def test_ramp__draft_experiment__400(write_client: APIClient, actor: Actor, checkout_flag: Flag,
                                     production: Environment, metrics: dict[str, Metric]) -> None:
    create_experiment(actor, checkout_flag, production, ["purchase"], coverage=0.1, start=False)
    response = write_client.post(URL, {"coverage": 0.5}, format="json")
    assert response.status_code == 400 and "status" in response.json()["details"]


def test_ramp__read_token__403(read_client: APIClient, ten_percent: Experiment) -> None:
    assert read_client.get(URL).status_code == 200
    assert read_client.post(URL, {"coverage": 0.5}, format="json").status_code == 403
    assert read_client.delete(URL).status_code == 403


def test_ramp_schedule__beat_task_applies_due_steps_in_the_same_phase_audited(
    write_client: APIClient, ten_percent: Experiment
) -> None:
    now = timezone.now()
    steps = [{"coverage": 0.5, "apply_at": (now + timedelta(hours=1)).isoformat()},
             {"coverage": 1.0, "apply_at": (now + timedelta(days=1)).isoformat()}]
    response = write_client.post(URL, {"steps": steps}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert [(s["coverage"], s["status"]) for s in body["steps"]] == [(0.5, "planned"), (1.0, "planned")]
    assert body["coverage"] == 0.1 and body["change"]["applied"] is False
    assert AuditEntry.objects.filter(action="experiment.ramp_schedule").count() == 1

    assert experiment_ramp_steps_task() == {"applied": 0, "skipped": 0}  # nothing due yet
    RampStep.objects.filter(coverage=0.5).update(apply_at=now - timedelta(minutes=1))
    assert experiment_ramp_steps_task() == {"applied": 1, "skipped": 0}
    assert experiment_ramp_steps_task() == {"applied": 0, "skipped": 0}  # applied once
    experiment = Experiment.objects.get(pk=ten_percent.pk)
    assert experiment.coverage == 0.5 and _phases(experiment) == [1]
    assert Rule.objects.get(experiment_key="checkout-test").coverage == 0.5
    step = RampStep.objects.get(coverage=0.5)
    assert (step.status, step.phase_number) == ("applied", 1) and step.requested_by.startswith("boss")
    entry = AuditEntry.objects.filter(action="experiment.ramp").get()
    assert entry.actor_label == f"ramp schedule ({step.requested_by})"

    # The later step, once due (as the scheduler sees it then).
    run = ramp_steps_apply_due(now=now + timedelta(days=1, minutes=1))
    assert (run.applied, run.skipped) == (1, 0)
    assert Experiment.objects.get(pk=ten_percent.pk).coverage == 1.0 and _phases(experiment) == [1]
    states = write_client.get(URL).json()["steps"]
    assert [s["status"] for s in states] == ["applied", "applied"]


def test_ramp_schedule__replaced_cancelled_and_skipped_when_stale(
    write_client: APIClient, actor: Actor, ten_percent: Experiment
) -> None:
    now = timezone.now()
    write_client.post(URL, {"steps": [{"coverage": 0.3, "apply_at": (now + timedelta(hours=1)).isoformat()}]},
                      format="json")
    write_client.post(URL, {"steps": [{"coverage": 0.4, "apply_at": (now + timedelta(hours=2)).isoformat()}]},
                      format="json")
    assert list(RampStep.objects.order_by("id").values_list("status", flat=True)) == ["cancelled", "planned"]
    # Raised by hand past the planned step: when due, it is skipped, not applied backwards.
    write_client.post(URL, {"coverage": 0.6}, format="json")
    run = ramp_steps_apply_due(now=now + timedelta(hours=3))
    assert (run.applied, run.skipped) == (0, 1)
    step = RampStep.objects.get(coverage=0.4)
    assert step.status == "skipped" and "already 60%" in step.note
    assert Experiment.objects.get(pk=ten_percent.pk).coverage == 0.6

    write_client.post(URL, {"steps": [{"coverage": 0.9, "apply_at": (now + timedelta(hours=4)).isoformat()}]},
                      format="json")
    cancelled = write_client.delete(URL)
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] == 1
    assert AuditEntry.objects.filter(action="experiment.ramp_cancel").count() == 1

    write_client.post(URL, {"steps": [{"coverage": 0.9, "apply_at": (now + timedelta(hours=4)).isoformat()}]},
                      format="json")
    services.experiment_stop(actor=actor, experiment=ten_percent, decision="rollback")
    assert RampStep.objects.filter(status="planned").count() == 0
    assert ramp_steps_apply_due(now=now + timedelta(hours=5)).applied == 0


def test_ramp_schedule__a_step_that_cannot_apply__skipped_and_the_next_one_still_applies(
    actor: Actor, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric]
) -> None:
    first = create_experiment(actor, checkout_flag, production, ["purchase"], key="ramp-a", coverage=0.1)
    second = create_experiment(actor, checkout_flag, production, ["purchase"], key="ramp-b", coverage=0.1)
    now = timezone.now()
    for experiment in (first, second):
        services.experiment_ramp_schedule(actor=actor, experiment=experiment,
                                          steps=[(0.5, now + timedelta(minutes=5))])
    # The first experiment stopped behind the service's back (its steps not cancelled).
    Experiment.objects.filter(pk=first.pk).update(status=Experiment.Status.STOPPED)
    run = ramp_steps_apply_due(now=now + timedelta(minutes=10))
    assert (run.applied, run.skipped) == (1, 1)
    assert "stopped" in RampStep.objects.get(experiment=first).note
    assert Experiment.objects.get(pk=first.pk).coverage == 0.1
    assert Experiment.objects.get(pk=second.pk).coverage == 0.5
