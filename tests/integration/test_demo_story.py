"""The demo data tells one story: simulated traffic shows on the flag pages and in the API as
it would from real SDKs, and the stale-flag list has something to show."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from experiments.management.commands.seed_experiments import DEMOS
from flags import services as flag_services
from flags.demo_data import FINISHED_FLAG, FLAGS, LAST_EVALUATED
from flags.models import FlagUsage
from flags.staleness import stale_flag_days, stale_flag_list
from flags.usage import flag_usage_record
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def _seed_the_demo() -> dict[str, Any]:
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    call_command("seed_experiments", "--users", "300", "--no-readout", stdout=StringIO())
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def _flags_api(client: Client, token: str) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/flags?limit=100", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    return {flag["key"]: flag for flag in response.json()["results"]}


def test_demo__seeded__every_flag_with_traffic_has_a_last_evaluation(client: Client) -> None:
    seeded = _seed_the_demo()
    flags = _flags_api(client, seeded["management_token"])
    now = timezone.now()
    with_traffic = [*LAST_EVALUATED, *(demo.key for demo in DEMOS)]
    for key in with_traffic:
        moment = flags[key]["last_evaluated_at"]
        assert moment is not None, key
        # Simulated traffic of the last two weeks, none of it in the future.
        assert now - timedelta(days=14) < datetime.fromisoformat(moment) <= now, key
    assert flags["new-checkout"]["environments"]["staging"]["last_evaluated_at"] is not None
    assert flags["search-ranking"]["environments"]["staging"]["last_evaluated_at"] is None


def test_demo__seeded__flag_pages_show_the_last_evaluation(client: Client) -> None:
    _seed_the_demo()
    client.force_login(factories.staff_user("pm", read_only=True))
    for key in [*LAST_EVALUATED, *(demo.key for demo in DEMOS)]:
        html = client.get(f"/flags/{key}/").content.decode()
        shown = re.search(r'id="last-evaluated">([^<]*)<', html)
        assert shown is not None and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", shown[1]), (key, shown)


def test_demo__readme_and_guide__count_and_name_what_is_seeded() -> None:
    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "reading-results.md").read_text()
    assert f"{NUMBERS[len(FLAGS)]} flags (`manage.py seed_demo`)" in readme
    assert f"{NUMBERS[len(DEMOS)]} running experiments\n(`manage.py seed_experiments`)" in readme
    assert f"`make demo` seeds {NUMBERS[len(DEMOS)]} running experiments" in guide
    for demo in DEMOS:
        assert f"`{demo.key}`" in readme and f"`{demo.key}`" in guide, demo.key
    assert f"`{FINISHED_FLAG}`, was last evaluated long ago" in readme


def test_demo__seeded__the_stale_list_shows_the_finished_flag(client: Client) -> None:
    _seed_the_demo()
    assert [flag.key for flag in stale_flag_list()] == [FINISHED_FLAG]
    (finished,) = stale_flag_list()
    assert finished.reasons == (f"not evaluated for {stale_flag_days() + 12} days",)
    client.force_login(factories.staff_user("pm", read_only=True))
    html = client.get("/flags/?stale=1").content.decode()
    assert FINISHED_FLAG in html and "new-checkout" not in html


def test_demo__seeded_again__recorded_times_left_alone(client: Client) -> None:
    _seed_the_demo()
    before = sorted(FlagUsage.objects.values_list("flag__key", "environment__key", "last_evaluated_at"))
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_experiments", stdout=StringIO())
    assert sorted(FlagUsage.objects.values_list("flag__key", "environment__key", "last_evaluated_at")) == before


def test_flag_usage_record__times_only_move_forward_and_never_past_now() -> None:
    env = factories.environment("production")
    flag = flag_services.flag_create(actor=factories.ACTOR, key="banner")
    now = timezone.now()

    def recorded() -> datetime:
        return FlagUsage.objects.get(flag=flag, environment=env).last_evaluated_at

    flag_usage_record(environment=env, evaluated={"banner": now - timedelta(days=1), "no-such-flag": now})
    assert recorded() == now - timedelta(days=1)
    flag_usage_record(environment=env, evaluated={"banner": now - timedelta(days=3)})
    assert recorded() == now - timedelta(days=1)
    flag_usage_record(environment=env, evaluated={"banner": now + timedelta(days=1)})
    assert now <= recorded() <= timezone.now()
