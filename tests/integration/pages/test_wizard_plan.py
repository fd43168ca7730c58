"""The guided creation's plan: metrics named the same on every step, the estimate on the power
step itself, one number of users from the plan to the running experiment, and a warning with
remedies when the plan is too long."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

import stats
from experiments import services as experiment_services
from experiments.models import Experiment, Metric
from flags import services as flag_services
from pages.presentation.planning import MAX_PLANNED_DAYS
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def named_catalog(db: Any) -> dict[str, Metric]:
    factories.environment()
    return {
        key: experiment_services.metric_create(actor=factories.ACTOR, key=key, name=name, kind=kind,
                                               event_name=key, direction=direction)
        for key, name, kind, direction in [
            ("purchase", "Purchase rate", "conversion", "higher"),
            ("revenue", "Revenue per user", "mean", "higher"),
            ("errors", "Checkout errors", "count", "lower"),
        ]
    }


def _answer_until_power(client: Client, *, treatments: tuple[str, ...] = ("on",), weights: str = "50/50",
                        coverage: str = "100", sequential: bool = True, cuped: bool = True) -> None:
    steps: list[tuple[str, dict[str, Any]]] = [
        ("basics", {"key": "plan-test", "hypothesis": "h", "environment": "production"}),
        ("flag", {"new_flag": "plan-test-flag"}),
        ("split", {"control": "off", "treatments": list(treatments), "weights": weights, "coverage": coverage,
                   "hash_attribute": "id"}),
        ("metrics", {"primary": "purchase", "secondary": ["revenue"], "guardrails": ["errors"], "alpha": "0.05",
                     "correction": "none", **({"sequential": "on"} if sequential else {}),
                     **({"cuped": "on"} if cuped else {})}),
    ]
    for step, data in steps:
        response = client.post(f"/experiments/new/{step}/", data)
        assert response.status_code == 302, (step, response.content.decode()[:2000])


def _number(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}">([0-9,]+)<', html)
    assert match is not None, element_id
    return int(match.group(1).replace(",", ""))


def test_wizard__metrics__name_and_key_in_the_picker_the_power_step_and_the_review(
    client_for: Any, analyst: User, named_catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    _answer_until_power(client)
    picker = client.get("/experiments/new/metrics/").content.decode()
    assert ">Purchase rate (purchase)</option>" in picker
    assert "Checkout errors (errors)" in picker
    power = client.get("/experiments/new/power/").content.decode()
    assert 'id="power-metric">Purchase rate (purchase)<' in power
    client.post("/experiments/new/power/", {"mde": "5", "baseline": "12", "daily_users": "4000"})
    review = client.get("/experiments/new/review/").content.decode()
    metrics = review.split('id="review-metrics">')[1].split("</dd>")[0]
    assert "Purchase rate (purchase)" in metrics
    assert "Revenue per user (revenue)" in metrics and "Checkout errors (errors)" in metrics


def test_wizard__estimate__shown_on_the_power_step_before_the_review(
    client_for: Any, analyst: User, named_catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    _answer_until_power(client)
    response = client.post("/experiments/new/power/", {"mde": "5", "baseline": "12", "daily_users": "4000",
                                                       "action": "estimate"}, follow=True)
    assert response.redirect_chain[-1][0] == "/experiments/new/power/"
    html = response.content.decode()
    assert 'id="power-estimate"' in html and 'id="plan-users"' in html
    assert 'id="underpowered"' not in html
    response = client.post("/experiments/new/power/", {"mde": "5", "baseline": "12", "daily_users": "4000",
                                                       "action": "continue"})
    assert response["Location"] == "/experiments/new/review/"


def test_wizard__sequential__one_number_of_users_from_the_plan_to_the_running_experiment(
    client_for: Any, analyst: User, named_catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    _answer_until_power(client, sequential=True)
    client.post("/experiments/new/power/", {"mde": "5", "baseline": "12", "daily_users": "4000",
                                            "action": "estimate"})
    power = client.get("/experiments/new/power/").content.decode()
    users = _number(power, "plan-users")
    # The always-valid test tuned to the planned sample needs exactly that sample.
    expected = stats.sequential_users_needed(effect=0.05, variance=0.12 * 0.88, mean=0.12, relative=True)
    assert users == -(-expected // 1)
    assert f"tuned for these {users:,} users" in power
    review = client.get("/experiments/new/review/").content.decode()
    assert f"about <strong>{users:,}</strong> users" in review
    assert f"tuned for {users:,} users" in review
    assert re.findall(r"tuned for ([0-9,]+) users", review) == [f"{users:,}"]
    response = client.post("/experiments/new/review/", {"action": "start"})
    assert response.status_code == 302
    experiment = Experiment.objects.get(key="plan-test")
    assert experiment.sequential_tuning == users
    assert f"about {users:,} users" in experiment.description
    detail = client.get("/experiments/plan-test/").content.decode()
    assert _number(detail, "sequential-tuning") == users


def test_wizard__fixed_horizon__plan_is_the_fixed_sample_and_nothing_is_tuned(
    client_for: Any, analyst: User, named_catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    _answer_until_power(client, sequential=False)
    client.post("/experiments/new/power/", {"mde": "5", "baseline": "12", "daily_users": "4000"})
    review = client.get("/experiments/new/review/").content.decode()
    fixed = stats.users_needed(effect=0.05, variance=0.12 * 0.88, mean=0.12, relative=True)
    assert f"about <strong>{-(-fixed // 1):,.0f}</strong> users" in review
    assert "tuned for" not in review


def test_wizard__absurd_duration__underpowered_with_remedies_on_the_step_and_the_review(
    client_for: Any, analyst: User, named_catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    _answer_until_power(client, treatments=("on",), coverage="50", cuped=False)
    response = client.post("/experiments/new/power/", {"mde": "2", "baseline": "3", "daily_users": "1000",
                                                       "action": "estimate"}, follow=True)
    html = response.content.decode()
    days = _number(html, "plan-days")
    assert days > MAX_PLANNED_DAYS
    warning = html.split('id="underpowered"')[1].split("</div>")[0]
    assert "Underpowered" in warning and f"longer than {MAX_PLANNED_DAYS} days" in warning
    assert "larger lift" in warning  # a larger MDE
    assert "eligible users a day" in warning and "raise coverage from 50% to 100%" in warning  # more traffic
    assert "Turn CUPED on" in warning
    review = client.get("/experiments/new/review/").content.decode()
    assert 'id="underpowered"' in review and "larger lift" in review


def test_wizard__several_treatments_too_long__suggests_fewer_variations(
    client_for: Any, analyst: User, named_catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    experiment_flag = "multi-flag"
    flag_services.flag_create(actor=factories.ACTOR, key=experiment_flag, value_type="string",
                              variants=[{"key": k, "value": k} for k in ("a", "b", "c", "d")])
    client.post("/experiments/new/basics/", {"key": "multi", "hypothesis": "h", "environment": "production"})
    client.post("/experiments/new/flag/", {"flag": experiment_flag})
    client.post("/experiments/new/split/", {"control": "a", "treatments": ["b", "c", "d"], "weights": "25/25/25/25",
                                            "coverage": "100", "hash_attribute": "id"})
    client.post("/experiments/new/metrics/", {"primary": "purchase", "alpha": "0.05", "correction": "none",
                                              "cuped": "on"})
    html = client.post("/experiments/new/power/", {"mde": "3", "baseline": "5", "daily_users": "2000",
                                                   "action": "estimate"}, follow=True).content.decode()
    warning = html.split('id="underpowered"')[1].split("</div>")[0]
    assert "fewer variations" in warning
    assert "CUPED is on" in warning


def test_wizard__plan_within_the_limit__no_warning(
    client_for: Any, analyst: User, named_catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    _answer_until_power(client)
    html = client.post("/experiments/new/power/", {"mde": "10", "baseline": "20", "daily_users": "50000",
                                                   "action": "estimate"}, follow=True).content.decode()
    assert _number(html, "plan-days") <= MAX_PLANNED_DAYS
    assert 'id="underpowered"' not in html
