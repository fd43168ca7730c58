"""The target effect on the results page (power panel) and in the guided creation."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from experiments.models import Experiment
from tests.integration.pages import factories


def _text(client: Client, path: str) -> str:
    html = client.get(path).content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_results_page__target_mde_field__used_over_the_description(analyst_client: Client, db: Any) -> None:
    # The description still says 5% (as the wizard wrote it before the field existed); the field wins.
    experiment = factories.seed(factories.flat_plan("planned", history=2, extra={"target_mde": 0.5}))
    assert "Target MDE: 5%" in experiment.description
    text = _text(analyst_client, f"/experiments/{experiment.key}/")
    assert "Target effect 50.0%" in text
    assert "50% relative on the primary metric" in text
    assert "More users needed none" in text  # 16,000 users detect a 50% lift easily
    # ?mde= overrides both, for what-if questions.
    assert "Target effect 1.0%" in _text(analyst_client, f"/experiments/{experiment.key}/?mde=1")


def test_results_page__target_mde_small__users_needed_and_date(analyst_client: Client, db: Any) -> None:
    experiment = factories.seed(factories.flat_plan("tiny-effect", history=2, extra={"target_mde": 0.01}))
    text = _text(analyst_client, f"/experiments/{experiment.key}/")
    assert "Target effect 1.0%" in text
    more = re.search(r"More users needed ([0-9,]+)", text)
    assert more is not None and int(more.group(1).replace(",", "")) > 0
    assert re.search(r"Projected date \d{4}-\d{2}-\d{2}", text)


def test_results_page__absolute_experiment__target_converted_with_the_control_mean(
    analyst_client: Client, db: Any
) -> None:
    plan = factories.flat_plan("absolute-plan", history=2, extra={"target_mde": 0.1, "difference_type": "absolute"})
    experiment = factories.seed(plan)
    text = _text(analyst_client, f"/experiments/{experiment.key}/")
    # signup converts at about 30%: a 10% relative target is about 3 percentage points.
    found = re.search(r"Target effect ([0-9.]+) pp", text)
    assert found is not None and float(found.group(1)) == pytest.approx(3.0, abs=0.5)


def test_results_page__no_target__says_so(analyst_client: Client, db: Any) -> None:
    plan = factories.flat_plan("unplanned", history=2)
    experiment = factories.create_experiment(plan)
    Experiment.objects.filter(pk=experiment.pk).update(description="")
    factories.snapshot_series(experiment, plan)
    text = _text(analyst_client, f"/experiments/{experiment.key}/")
    assert "No target effect was planned for this experiment" in text
    assert "not set" in text


def test_wizard__mde_answer__stored_as_target_mde(analyst_client: Client, db: Any) -> None:
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    factories.environment()
    steps: list[tuple[str, dict[str, Any]]] = [
        ("basics", {"key": "planned-button", "environment": "production",
                    "hypothesis": "A bigger button lifts purchases."}),
        ("flag", {"new_flag": "planned-button-flag"}),
        ("split", {"control": "off", "treatments": ["on"], "weights": "50/50", "coverage": "100",
                   "condition": "", "hash_attribute": "id"}),
        ("metrics", {"primary": "purchase", "cuped": "on", "alpha": "0.05", "correction": "none",
                     "slice_attributes": ""}),
        ("power", {"mde": "2.5", "baseline": "12", "daily_users": "4000"}),
    ]
    for step, data in steps:
        response = analyst_client.post(f"/experiments/new/{step}/", data)
        assert response.status_code == 302, (step, response.content.decode()[:2000])
    assert analyst_client.post("/experiments/new/review/", {"action": "draft"}).status_code == 302
    experiment = Experiment.objects.get(key="planned-button")
    assert experiment.target_mde == pytest.approx(0.025)
    assert "Target MDE" not in experiment.description
    assert "Planned: about" in experiment.description


def test_migration__wizard_descriptions__target_mde_filled_description_kept(db: Any) -> None:
    planned = factories.create_experiment(factories.flat_plan("planned-old"), start=False)
    unplanned = factories.create_experiment(factories.flat_plan("no-percent"), start=False)
    kept = factories.create_experiment(factories.flat_plan("already-set", extra={"target_mde": 0.2}), start=False)
    Experiment.objects.filter(pk=planned.pk).update(description="Target MDE: 2.5%\nPlanned: about 9,000 users.")
    Experiment.objects.filter(pk=unplanned.pk).update(description="Target MDE: 3")
    migration = importlib.import_module("experiments.migrations.0008_target_mde_from_description")
    migration.target_mde_from_description(apps, None)
    planned.refresh_from_db()
    unplanned.refresh_from_db()
    kept.refresh_from_db()
    assert planned.target_mde == pytest.approx(0.025)
    assert planned.description == "Target MDE: 2.5%\nPlanned: about 9,000 users."
    assert unplanned.target_mde is None  # no percent sign: ambiguous, left alone
    assert kept.target_mde == pytest.approx(0.2)
