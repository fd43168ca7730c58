"""Wording product managers rely on: the kill switch tells the same story before and after it is
used, and form errors about the n-th item of a list name it as people count (from 1)."""

from __future__ import annotations

import re
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
