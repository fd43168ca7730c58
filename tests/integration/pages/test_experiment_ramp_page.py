"""The ramp page of a running experiment: each change is described (phase continues or a new
one starts) before it is confirmed, then made through the ramp service; the read-only role
cannot ramp; bad input is a form error and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from audit.models import AuditEntry
from experiments.models import Experiment, Phase, RampStep
from flags.models import Rule
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(db: Any) -> Experiment:
    return factories.create_experiment(factories.flat_plan("ramp-page", extra={"coverage": 0.1}))


def _phases(experiment: Experiment) -> list[int]:
    return list(Phase.objects.filter(experiment=experiment).values_list("number", flat=True))


def test_ramp_page__coverage_raise__says_the_phase_continues_then_applies(
    client_for: Any, analyst: User, running: Experiment
) -> None:
    client = client_for(analyst)
    detail = client.get("/experiments/ramp-page/").content.decode()
    assert 'id="ramp-experiment"' in detail and 'id="coverage">10%' in detail
    page = client.get("/experiments/ramp-page/ramp").content.decode()
    assert "coverage <strong>10%</strong>" in page and "split <strong>50/50</strong>" in page
    preview = client.post("/experiments/ramp-page/ramp", {"mode": "now", "now-coverage": "50",
                                                          "now-weights": "50/50"})
    html = preview.content.decode()
    assert preview.status_code == 200 and 'data-new-phase="false"' in html
    assert "Phase 1 continues" in html and "keeps their variation" in html
    assert Experiment.objects.get(pk=running.pk).coverage == 0.1  # nothing changed yet
    applied = client.post("/experiments/ramp-page/ramp", {"mode": "now", "confirm": "yes", "now-coverage": "50",
                                                          "now-weights": "50/50"}, follow=True)
    assert "phase 1 continues" in applied.content.decode()
    assert Experiment.objects.get(pk=running.pk).coverage == 0.5 and _phases(running) == [1]
    assert Rule.objects.get(experiment_key="ramp-page").coverage == 0.5
    assert AuditEntry.objects.filter(action="experiment.ramp", actor_label="analyst").count() == 1


def test_ramp_page__new_split__says_a_new_phase_starts_then_starts_it(
    client_for: Any, analyst: User, running: Experiment
) -> None:
    client = client_for(analyst)
    preview = client.post("/experiments/ramp-page/ramp", {"mode": "now", "now-coverage": "10",
                                                          "now-weights": "30/70"}).content.decode()
    assert 'data-new-phase="true"' in preview and "Phase 2 starts" in preview and "30/70" in preview
    assert _phases(running) == [1]
    client.post("/experiments/ramp-page/ramp", {"mode": "now", "confirm": "yes", "now-coverage": "10",
                                                "now-weights": "30/70"})
    assert _phases(running) == [1, 2]
    assert [v.weight for v in Experiment.objects.get(pk=running.pk).variations.all()] == [0.3, 0.7]


def test_ramp_page__schedule__described_planned_listed_and_cancelled(
    client_for: Any, analyst: User, running: Experiment
) -> None:
    client = client_for(analyst)
    start = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    data = {"mode": "schedule", "schedule-percents": "50, 100", "schedule-start": start,
            "schedule-interval_hours": "24"}
    preview = client.post("/experiments/ramp-page/ramp", data).content.decode()
    assert "Phase 1 continues at every step" in preview and not RampStep.objects.exists()
    client.post("/experiments/ramp-page/ramp", {**data, "confirm": "yes"})
    steps = list(RampStep.objects.order_by("apply_at").values_list("coverage", "status"))
    assert steps == [(0.5, "planned"), (1.0, "planned")]
    detail = client.get("/experiments/ramp-page/").content.decode()
    assert 'id="planned-steps">planned: 50% on' in detail
    client.post("/experiments/ramp-page/ramp", {"mode": "cancel"})
    assert set(RampStep.objects.values_list("status", flat=True)) == {"cancelled"}


@pytest.mark.parametrize(("data", "message"), [
    ({"mode": "now", "now-coverage": "10", "now-weights": "50/50"}, "Nothing to change"),
    ({"mode": "now", "now-coverage": "0", "now-weights": "50/50"}, "greater than or equal to 0.01"),
    ({"mode": "now", "now-coverage": "50", "now-weights": "70/20"}, "add up to 100%"),
    ({"mode": "schedule", "schedule-percents": "50, 40", "schedule-start": "2099-01-01T00:00",
      "schedule-interval_hours": "24"}, "Step 2"),
    ({"mode": "schedule", "schedule-percents": "5", "schedule-start": "2099-01-01T00:00",
      "schedule-interval_hours": "24"}, "above today"),
    ({"mode": "schedule", "schedule-percents": "50", "schedule-start": "2001-01-01T00:00",
      "schedule-interval_hours": "24"}, "after now"),
])
def test_ramp_page__bad_input__form_error_and_nothing_changes(
    client_for: Any, analyst: User, running: Experiment, data: dict[str, str], message: str
) -> None:
    client = client_for(analyst)
    audit_before = AuditEntry.objects.count()
    for confirm in ("", "yes"):
        response = client.post("/experiments/ramp-page/ramp", {**data, "confirm": confirm})
        assert response.status_code == 200
        assert message in response.content.decode()
    assert AuditEntry.objects.count() == audit_before and not RampStep.objects.exists()
    assert Experiment.objects.get(pk=running.pk).coverage == 0.1 and _phases(running) == [1]


def test_ramp_page__read_only_role__no_button_and_403(client_for: Any, viewer: User, running: Experiment) -> None:
    client = client_for(viewer)
    assert 'id="ramp-experiment"' not in client.get("/experiments/ramp-page/").content.decode()
    assert client.get("/experiments/ramp-page/ramp").status_code == 403
    response = client.post("/experiments/ramp-page/ramp", {"mode": "now", "confirm": "yes", "now-coverage": "50",
                                                           "now-weights": "50/50"})
    assert response.status_code == 403
    assert Experiment.objects.get(pk=running.pk).coverage == 0.1
