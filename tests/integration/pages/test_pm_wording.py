"""Wording product managers rely on: the kill switch tells the same story before and after it is
used, and form errors about the n-th item of a list name it as people count (from 1)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import User

from experiments.models import Experiment
from flags import services
from flags.models import Rule
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db

# What a switched-off flag does to a running experiment's results.
FLAG_OFF_EFFECT = (
    "While the flag is off, everyone gets its off variant and no exposures are recorded: no new users enter the "
    "experiment. The results keep everyone counted so far in their variation, but those users now see the off "
    "variant, so what they do from now on blurs the difference between the variations."
)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_kill_switch__confirmation_and_result_banner__tell_the_same_story(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    client = client_for(analyst)
    flag, env = winner.flag, winner.environment

    confirmation = _text(client.get(f"/flags/{flag.key}/environments/{env.key}/switch").content.decode())
    services.flag_switch(actor=factories.ACTOR, flag=flag, environment=env, enabled=False)
    banner = _text(client.get(f"/experiments/{winner.key}/").content.decode()).split("flag page")[0]

    assert winner.key in confirmation
    for page in (confirmation, banner):
        assert FLAG_OFF_EFFECT in page
        assert "stop moving" not in page and "mix in" not in page


def test_ramp__a_step_refused_by_the_service__named_step_2(client_for: Any, analyst: User) -> None:
    env = factories.environment()
    flag = services.flag_create(actor=factories.ACTOR, key="new-footer")

    response = client_for(analyst).post(f"/flags/{flag.key}/ramps/new", {
        "environment": env.key, "variant": "on", "percents": "50, 25", "interval_hours": "24", "position": "bottom",
    })

    assert response.status_code == 200
    errors = [str(e) for e in response.context["form"].non_field_errors()]
    assert errors == ["Step 2, percent: Each step must serve more units than the last."]
    assert "steps[1]" not in response.content.decode()
    assert not Rule.objects.filter(state__flag=flag).exists()


def test_recommendation__verdict_said_once(client_for: Any, analyst: User, winner: Experiment) -> None:
    text = _text(client_for(analyst).get(f"/experiments/{winner.key}/").content.decode())
    assert "Ship: Treatment beat the control on the primary metric." in text
    assert "Ship: Ship" not in text


def test_stop__decision_in_words_on_the_page_the_list_and_the_message(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    client = client_for(analyst)
    response = client.post(f"/experiments/{winner.key}/stop", {"decision": "ship", "variation": "treatment"},
                           follow=True)
    page = unescape(_text(response.content.decode()))
    assert f"'{winner.key}' stopped: Treatment shipped to everyone." in page
    assert "decided: Treatment shipped to everyone" in page
    assert "Ship a variation" not in page
    assert "Decided: Treatment shipped to everyone" in _text(client.get("/experiments/").content.decode())


def test_cuped__spelled_as_an_acronym_in_the_guided_creation_and_the_admin(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    analyst.is_superuser = True
    analyst.save()
    client = client_for(analyst)
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    pages = [client.get(f"/admin/experiments/experiment/{winner.pk}/change/").content.decode(),
             client.get("/admin/experiments/experiment/add/").content.decode()]
    for step, data in (
        ("basics", {"key": "acronyms", "environment": "production", "hypothesis": "Labels read right."}),
        ("flag", {"new_flag": "acronyms-flag"}),
        ("split", {"control": "off", "treatments": ["on"], "weights": "50/50", "coverage": "100",
                   "condition": "", "hash_attribute": "id"}),
    ):
        assert client.post(f"/experiments/new/{step}/", data).status_code == 302, step
    metrics_step = client.get("/experiments/new/metrics/").content.decode()
    assert re.search(r'<label for="id_cuped">\s*CUPED\b', metrics_step), metrics_step
    pages.append(metrics_step)
    for html in pages:
        assert "Cuped" not in html
    labels = re.findall(r"<label[^>]*>\s*([^<]*?)\s*[:<]", pages[0])
    assert "CUPED" in labels and "CUPED lookback days" in labels and "Target MDE" in labels, labels


def test_start_refused__each_problem_named_by_its_field(client_for: Any, analyst: User) -> None:
    plan = factories.flat_plan("no-primary")
    draft = factories.create_experiment(plan, start=False)
    draft.experiment_metrics.filter(role="primary").update(role="secondary")

    response = client_for(analyst).post(f"/experiments/{draft.key}/start", follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert any("Metrics: Pick a primary metric." in m for m in messages), messages
