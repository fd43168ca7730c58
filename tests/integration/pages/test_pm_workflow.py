"""The PM workflow through the pages: guided creation, start, stop with a decision, the kill
switch and rollout ramps; every change audited and served by the flag."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from base.models import Environment
from experiments.models import Experiment, Metric
from flags import ramps, services
from flags.engine.evaluation import evaluate
from flags.mappers import environment_snapshot
from flags.models import Flag, FlagState, Rule
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db: Any) -> dict[str, Metric]:
    factories.environment()
    return factories.ensure_metrics([
        factories.MetricPlan("purchase", "conversion"),
        factories.MetricPlan("revenue", "mean"),
        factories.MetricPlan("errors", "count", direction="lower"),
    ])


def _walk_wizard(client: Client, *, new_flag: str = "", flag: str = "", action: str = "start") -> Any:
    steps: list[tuple[str, dict[str, Any]]] = [
        ("basics", {"key": "green-button", "name": "Green button", "owner": "pm-ana", "environment": "production",
                    "hypothesis": "A green buy button lifts purchases by 5% because it stands out."}),
        ("flag", {"new_flag": new_flag} if new_flag else {"flag": flag}),
        ("split", {"control": "off", "treatments": ["on"], "weights": "50/50", "coverage": "100",
                   "condition": '{"country": {"$in": ["DE", "FR"]}}', "hash_attribute": "id"}),
        ("metrics", {"primary": "purchase", "secondary": ["revenue"], "guardrails": ["errors"], "sequential": "on",
                     "cuped": "on", "alpha": "0.05", "correction": "none", "slice_attributes": "country, platform"}),
        ("power", {"mde": "5", "baseline": "12", "daily_users": "4000"}),
    ]
    for step, data in steps:
        response = client.post(f"/experiments/new/{step}/", data)
        assert response.status_code == 302, (step, response.content.decode()[:3000])
    review = client.get("/experiments/new/review/")
    assert review.status_code == 200
    return client.post("/experiments/new/review/", {"action": action}), review


def test_wizard__new_flag__created_started_serving_and_audited(
    client_for: Any, analyst: User, catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    response, review = _walk_wizard(client, new_flag="green-button-flag")
    text = review.content.decode()
    assert "about <strong>" in text and "users" in text  # the power estimate on the review screen
    assert response.status_code == 302 and response["Location"] == "/experiments/green-button/"
    experiment = Experiment.objects.get(key="green-button")
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.sequential and experiment.cuped and experiment.slice_attributes == ["country", "platform"]
    assert experiment.condition == {"country": {"$in": ["DE", "FR"]}}
    assert experiment.target_mde == pytest.approx(0.05)
    assert "Target MDE" not in experiment.description
    assert experiment.sequential_tuning > 1000  # tuned to the planned sample
    assert [(v.key, v.weight) for v in experiment.variations.all()] == [("off", 0.5), ("on", 0.5)]
    roles = {link.metric.key: link.role for link in experiment.experiment_metrics.select_related("metric")}
    assert roles == {"purchase": "primary", "revenue": "secondary", "errors": "guardrail"}
    actions = set(AuditEntry.objects.filter(actor_label="analyst").values_list("action", flat=True))
    assert {"flag.create", "experiment.create", "experiment.start", "flag.rule_create"} <= actions
    env = Environment.objects.get(key="production")
    snapshot = environment_snapshot(environment=env)
    variants = {evaluate(snapshot, "green-button-flag", {"id": f"u{i}", "country": "DE"}).variant for i in range(200)}
    assert variants == {"off", "on"}
    assert "green-button" in client.get("/experiments/").content.decode()
    page = client.get("/experiments/green-button/").content.decode()
    assert "No results yet" in page


def test_wizard__draft_then_start_from_the_results_page(
    client_for: Any, analyst: User, catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    services.flag_create(actor=factories.ACTOR, key="existing-flag")
    response, _ = _walk_wizard(client, flag="existing-flag", action="draft")
    experiment = Experiment.objects.get(key="green-button")
    assert experiment.status == Experiment.Status.DRAFT
    page = client.get("/experiments/green-button/").content.decode()
    assert 'id="start-experiment"' in page and "disabled" not in page.split('id="start-experiment"')[1][:40]
    response = client.post("/experiments/green-button/start")
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.RUNNING


def test_wizard__new_flag_without_the_right_to_create_flags__refused_and_nothing_written(
    client_for: Any, catalog: dict[str, Metric]
) -> None:
    user = factories.staff_user("drafter")
    user.user_permissions.remove(Permission.objects.get(codename="add_flag"))
    client = client_for(user)
    audit_before = AuditEntry.objects.count()
    response, _ = _walk_wizard(client, new_flag="green-button-flag", action="draft")
    assert response.status_code == 200
    assert "cannot create flags" in response.content.decode()
    assert not Flag.objects.filter(key="green-button-flag").exists()
    assert not Experiment.objects.filter(key="green-button").exists()
    assert AuditEntry.objects.count() == audit_before


def test_wizard__invalid_answers__errors_shown_and_nothing_written(
    client_for: Any, analyst: User, catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    response = client.post("/experiments/new/basics/", {"key": "bad key!", "environment": "production"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Use letters, digits" in html and "This field is required" in html
    # Later steps send you back to the first unanswered one.
    assert client.get("/experiments/new/metrics/")["Location"] == "/experiments/new/basics/"
    client.post("/experiments/new/basics/", {"key": "ok-key", "hypothesis": "h", "environment": "production"})
    client.post("/experiments/new/flag/", {"new_flag": "ok-flag"})
    response = client.post("/experiments/new/split/", {"control": "off", "treatments": ["on"], "weights": "70/20",
                                                       "coverage": "100", "hash_attribute": "id"})
    assert "add up to 100%" in response.content.decode()
    response = client.post("/experiments/new/split/", {"control": "off", "treatments": ["on"], "weights": "50/50",
                                                       "coverage": "100", "hash_attribute": "id",
                                                       "condition": "{country: DE}"})
    assert "not valid JSON" in response.content.decode()
    assert not Experiment.objects.filter(key="ok-key").exists()
    assert not Flag.objects.filter(key="ok-flag").exists()


def test_wizard__changing_the_flag__asks_for_the_split_again(
    client_for: Any, analyst: User, catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    services.flag_create(actor=factories.ACTOR, key="colour", value_type="string",
                         variants=[{"key": "blue", "value": "b"}, {"key": "green", "value": "g"}])
    client.post("/experiments/new/basics/", {"key": "k2", "hypothesis": "h", "environment": "production"})
    client.post("/experiments/new/flag/", {"new_flag": "k2-flag"})
    client.post("/experiments/new/split/", {"control": "off", "treatments": ["on"], "weights": "50/50",
                                            "coverage": "100", "hash_attribute": "id"})
    client.post("/experiments/new/flag/", {"flag": "colour"})
    assert client.get("/experiments/new/metrics/")["Location"] == "/experiments/new/split/"
    html = client.get("/experiments/new/split/").content.decode()
    assert 'value="blue"' in html and 'value="off"' not in html


def test_wizard__power_step__estimates_users_and_days(
    client_for: Any, analyst: User, catalog: dict[str, Metric]
) -> None:
    client = client_for(analyst)
    client.post("/experiments/new/basics/", {"key": "k1", "hypothesis": "h", "environment": "production"})
    client.post("/experiments/new/flag/", {"new_flag": "k1-flag"})
    client.post("/experiments/new/split/", {"control": "off", "treatments": ["on"], "weights": "50/50",
                                            "coverage": "50", "hash_attribute": "id"})
    client.post("/experiments/new/metrics/", {"primary": "purchase", "alpha": "0.05", "correction": "none"})
    client.post("/experiments/new/power/", {"mde": "10", "baseline": "10", "daily_users": "1000"})
    html = client.get("/experiments/new/power/").content.decode()
    assert 'id="power-estimate"' in html
    # Relative lift L = 10% on p = 10%, fixed horizon, alpha 0.05, power 0.8, 50/50: the delta-method
    # variance of the lift gives N = (z_.975 + z_.8)^2 p(1-p)/p^2 (1/w_B + (1+L)^2/w_A) / L^2 users in total.
    expected = (1.959964 + 0.841621) ** 2 * (0.09 / 0.01) * (2 + 1.21 * 2) / 0.01
    users = int(html.split('id="plan-users">')[1].split("<")[0].replace(",", ""))
    assert users == pytest.approx(expected, rel=0.002)
    # 500 users a day enter at 50% coverage.
    days = int(html.split('id="plan-days">')[1].split("<")[0].replace(",", ""))
    assert days == -(-users // 500)


def test_stop__ship__flag_serves_the_variation_to_everyone(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    client = client_for(analyst)
    form = client.get(f"/experiments/{winner.key}/stop")
    html = form.content.decode()
    assert "The results page recommends" in html and 'value="treatment" selected' in html
    response = client.post(f"/experiments/{winner.key}/stop", {"decision": "ship", "variation": "treatment",
                                                                "note": "Clear win."})
    assert response.status_code == 302
    winner.refresh_from_db()
    assert winner.status == Experiment.Status.STOPPED and winner.shipped_variation == "treatment"
    state = FlagState.objects.get(flag=winner.flag, environment=winner.environment)
    assert state.default_variant == "treatment"
    snapshot = environment_snapshot(environment=winner.environment)
    assert {evaluate(snapshot, winner.flag.key, {"id": f"u{i}"}).variant for i in range(50)} == {"treatment"}
    assert AuditEntry.objects.filter(action="experiment.stop", object_key=winner.key, actor_label="analyst").exists()
    page = client.get(f"/experiments/{winner.key}/").content.decode()
    assert 'decided: <span id="decision">Treatment shipped to everyone</span>' in page
    assert "Decided: Treatment shipped to everyone" in client.get("/experiments/").content.decode()


def test_stop__ship_without_variation__form_error(client_for: Any, analyst: User, winner: Experiment) -> None:
    response = client_for(analyst).post(f"/experiments/{winner.key}/stop", {"decision": "ship"})
    assert response.status_code == 200 and "Pick the variation to ship" in response.content.decode()
    winner.refresh_from_db()
    assert winner.status == Experiment.Status.RUNNING


def test_kill_switch__confirm_page_then_off__audited_and_served(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    client = client_for(analyst)
    env = winner.environment.key
    url = f"/flags/{winner.flag.key}/environments/{env}/switch"
    confirm = client.get(url).content.decode()
    assert "Every unit gets <code>control</code>" in confirm
    assert "Running experiments use this flag" in confirm and winner.key in confirm
    assert FlagState.objects.get(flag=winner.flag, environment=winner.environment).enabled
    response = client.post(url, {"enabled": "0"})
    assert response.status_code == 302
    state = FlagState.objects.get(flag=winner.flag, environment=winner.environment)
    assert not state.enabled
    assert AuditEntry.objects.filter(action="flag.toggle", object_key=winner.flag.key, actor_label="analyst").exists()
    snapshot = environment_snapshot(environment=winner.environment)
    assert {evaluate(snapshot, winner.flag.key, {"id": f"u{i}"}).variant for i in range(50)} == {"control"}
    # A stale confirmation (the flag is already off) changes nothing.
    response = client.post(url, {"enabled": "0"})
    assert not FlagState.objects.get(flag=winner.flag, environment=winner.environment).enabled
    assert client.post(url, {"enabled": "1"}).status_code == 302
    assert FlagState.objects.get(flag=winner.flag, environment=winner.environment).enabled


def _served_share(
    flag: Flag, env: Environment, variant: str, *, at: float, units: int = 2000
) -> tuple[float, set[str]]:
    snapshot = environment_snapshot(environment=env)
    served = {
        f"u{i}" for i in range(units) if evaluate(snapshot, flag.key, {"id": f"u{i}"}, now=at).variant == variant
    }
    return len(served) / units, served


def test_ramp__page_schedules_steps__share_rises_and_units_stay_in(client_for: Any, analyst: User) -> None:
    env = factories.environment()
    flag = services.flag_create(actor=factories.ACTOR, key="new-search")
    services.flag_state_update(actor=factories.ACTOR, flag=flag, environment=env, enabled=True)
    start = timezone.now() - timedelta(hours=1)
    response = client_for(analyst).post(f"/flags/{flag.key}/ramps/new", {
        "environment": env.key, "variant": "on", "percents": "5, 25, 50, 100",
        "start": start.strftime("%Y-%m-%dT%H:%M"), "interval_hours": "24", "position": "bottom",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    rules = list(Rule.objects.filter(state__flag=flag).order_by("position"))
    assert [r.coverage for r in rules] == [0.05, 0.25, 0.5, 1.0]
    assert all(r.kind == "rollout" and r.variant == "on" for r in rules)
    assert len({r.seed for r in rules}) == 1
    for earlier, later in itertools.pairwise(rules):
        assert earlier.ends_at == later.starts_at  # contiguous windows, no overlap
    assert rules[-1].ends_at is None
    assert AuditEntry.objects.filter(action="flag.rule_create", object_key=flag.key, actor_label="analyst").count() == 4
    shares: list[float] = []
    previous: set[str] = set()
    real_now = timezone.now()
    for day in range(4):
        share, served = _served_share(flag, env, "on", at=(real_now + timedelta(days=day)).timestamp())
        assert previous <= served  # nobody loses the variant as the share grows
        shares.append(share)
        previous = served
    assert shares[0] == pytest.approx(0.05, abs=0.02)
    assert shares[1] == pytest.approx(0.25, abs=0.03)
    assert shares[2] == pytest.approx(0.5, abs=0.03)
    assert shares[3] == 1.0
    page = client_for(analyst).get(f"/flags/{flag.key}/").content.decode()
    assert 'data-ramp="' in page and "now <strong>5%</strong>" in page


def test_ramp__hold_and_remove(client_for: Any, analyst: User) -> None:
    env = factories.environment()
    flag = services.flag_create(actor=factories.ACTOR, key="new-nav")
    services.flag_state_update(actor=factories.ACTOR, flag=flag, environment=env, enabled=True)
    now = timezone.now()
    steps = ramps.ramp_plan(start=now - timedelta(hours=30), interval=timedelta(days=1))
    ramp = ramps.ramp_create(actor=factories.ACTOR, flag=flag, environment=env, variant="on", steps=steps)
    assert [s.status for s in ramp.steps] == ["done", "current", "planned", "planned"]
    assert ramp.current_percent == 25.0
    client = client_for(analyst)
    response = client.post(f"/flags/{flag.key}/environments/{env.key}/ramps/{ramp.id}/stop", {"mode": "hold"})
    assert response.status_code == 302
    held = ramps.ramp_list(flag=flag, environment=env)[0]
    assert [s.percent for s in held.steps] == [5.0, 25.0]
    assert held.steps[-1].ends_at is None and held.current_percent == 25.0
    client.post(f"/flags/{flag.key}/environments/{env.key}/ramps/{ramp.id}/stop", {"mode": "remove"})
    assert ramps.ramp_list(flag=flag, environment=env) == []
    assert not Rule.objects.filter(state__flag=flag).exists()


def test_ramp__bad_steps__form_errors_and_nothing_written(client_for: Any, analyst: User) -> None:
    env = factories.environment()
    flag = services.flag_create(actor=factories.ACTOR, key="new-footer")
    client = client_for(analyst)
    response = client.post(f"/flags/{flag.key}/ramps/new", {
        "environment": env.key, "variant": "on", "percents": "50, 25", "interval_hours": "24", "position": "bottom",
    })
    assert response.status_code == 200
    assert "Each step must serve more units than the last" in response.content.decode()
    response = client.post(f"/flags/{flag.key}/ramps/new", {
        "environment": env.key, "variant": "on", "percents": "five", "interval_hours": "24", "position": "bottom",
    })
    assert "Give percentages separated by commas" in response.content.decode()
    assert not Rule.objects.filter(state__flag=flag).exists()
