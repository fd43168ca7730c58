"""Flag pages and stale-flag detection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEntry
from base.models import Environment
from experiments.models import Experiment
from flags import services
from flags import staleness as lifecycle
from flags.models import Flag, FlagUsage
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db
A = factories.ACTOR


def _age(flag: Flag, days: float) -> None:
    """Pretend every change of the flag happened `days` ago."""
    moment = timezone.now() - timedelta(days=days)
    AuditEntry.objects.filter(object_type="flag", object_key=flag.key).update(created_at=moment)
    Flag.objects.filter(pk=flag.pk).update(updated_at=moment)


@pytest.fixture
def envs(db: Any) -> list[Environment]:
    return [factories.environment("production"), factories.environment("staging")]


def _rolled_out(key: str, envs: list[Environment], **fields: Any) -> Flag:
    flag = services.flag_create(actor=A, key=key, **fields)
    for env in envs:
        services.flag_state_update(actor=A, flag=flag, environment=env, enabled=True, default_variant="on")
    return flag


def test_lifecycle__one_variant_everywhere_for_long__stale(envs: list[Environment]) -> None:
    flag = _rolled_out("old-launch", envs)
    _age(flag, 45)
    found = lifecycle.flag_lifecycle_get(flag=flag)
    assert found.stale and found.rolled_out_variant == "on"
    assert "served 'on' to everyone in every environment for 45 days" in found.reasons[0]
    assert [f.key for f in lifecycle.stale_flag_list()] == ["old-launch"]


def test_lifecycle__recent_or_split_or_permanent__not_stale(envs: list[Environment]) -> None:
    recent = _rolled_out("recent-launch", envs)
    _age(recent, 10)
    permanent = _rolled_out("ops-switch", envs, lifecycle="permanent")
    _age(permanent, 400)
    split = _rolled_out("half-launch", envs)
    services.flag_rule_create(actor=A, flag=split, environment=envs[0], kind="rollout", variant="off", coverage=0.5)
    _age(split, 90)
    targeted = _rolled_out("de-only", envs)
    services.flag_rule_create(actor=A, flag=targeted, environment=envs[1], kind="force", variant="off",
                              condition={"country": "DE"})
    _age(targeted, 90)
    by_key = {f.key: f for f in lifecycle.flag_lifecycle_list()}
    assert not by_key["recent-launch"].stale and by_key["recent-launch"].rolled_out_variant == "on"
    assert not by_key["ops-switch"].stale
    assert not by_key["half-launch"].stale and by_key["half-launch"].rolled_out_variant is None
    assert not by_key["de-only"].stale
    assert lifecycle.stale_flag_list() == []


def test_lifecycle__full_rollout_rule__counts_as_rolled_out_from_its_start(envs: list[Environment]) -> None:
    flag = services.flag_create(actor=A, key="full-ramp")
    for env in envs:
        services.flag_state_update(actor=A, flag=flag, environment=env, enabled=True)
        services.flag_rule_create(actor=A, flag=flag, environment=env, kind="rollout", variant="on", coverage=1.0,
                                  starts_at=timezone.now() - timedelta(days=5))
    _age(flag, 60)
    found = lifecycle.flag_lifecycle_get(flag=flag)
    assert found.rolled_out_variant == "on" and not found.stale  # everyone only since 5 days
    # Rolled out since the rule's start, not since the flag's last change.
    assert (timezone.now() - found.rolled_out_since).days == 5  # type: ignore[operator]


def test_lifecycle__setting_changes_the_horizon(envs: list[Environment]) -> None:
    flag = _rolled_out("mid-launch", envs)
    _age(flag, 12)
    assert not lifecycle.flag_lifecycle_get(flag=flag).stale
    with override_settings(STALE_FLAG_DAYS=7):
        assert lifecycle.flag_lifecycle_get(flag=flag).stale


def test_lifecycle__evaluation_times_when_known(envs: list[Environment]) -> None:
    quiet = services.flag_create(actor=A, key="quiet-flag")
    busy = services.flag_create(actor=A, key="busy-flag")
    for flag in (quiet, busy):
        services.flag_rule_create(actor=A, flag=flag, environment=envs[0], kind="rollout", variant="on", coverage=0.3)
    now = timezone.now()

    def source(keys: Any) -> dict[str, Any]:
        return {"quiet-flag": now - timedelta(days=40), "busy-flag": now - timedelta(minutes=3)}

    by_key = {f.key: f for f in lifecycle.flag_lifecycle_list(last_evaluated=source)}
    assert by_key["quiet-flag"].stale and by_key["quiet-flag"].reasons == ("not evaluated for 40 days",)
    assert not by_key["busy-flag"].stale
    # By default nothing records evaluations: unknown, never a reason to call a flag stale.
    assert lifecycle.flag_lifecycle_get(flag=quiet).last_evaluated is None


def test_flag_list__stale_filter_and_marks(client_for: Any, analyst: User, envs: list[Environment]) -> None:
    old = _rolled_out("old-launch", envs)
    _age(old, 45)
    _rolled_out("recent-launch", envs)
    client = client_for(analyst)
    html = client.get("/flags/").content.decode()
    assert 'data-flag="old-launch"' in html and 'data-flag="recent-launch"' in html
    assert "stale-badge" in html.split('data-flag="old-launch"')[1].split("</tr>")[0]
    assert "fully rolled out" in html.split('data-flag="recent-launch"')[1].split("</tr>")[0]
    stale = client.get("/flags/?stale=1").content.decode()
    assert 'data-flag="old-launch"' in stale and 'data-flag="recent-launch"' not in stale
    # The last evaluation, once recorded, shows in the list.
    assert "never" in html.split('data-flag="recent-launch"')[1].split("</tr>")[0]
    seen = timezone.now() - timedelta(hours=2)
    FlagUsage.objects.create(flag=Flag.objects.get(key="recent-launch"), environment=envs[0], last_evaluated_at=seen)
    row = client.get("/flags/").content.decode().split('data-flag="recent-launch"')[1].split("</tr>")[0]
    assert f"{seen:%Y-%m-%d %H:%M}" in row


def test_flag_list__many_flags__bounded_queries(
    client_for: Any, analyst: User, envs: list[Environment], django_assert_max_num_queries: Any
) -> None:
    for i in range(25):
        _rolled_out(f"flag-{i:02d}", envs)
    client = client_for(analyst)
    with django_assert_max_num_queries(12):
        assert client.get("/flags/").status_code == 200


def test_flag_detail__usage_prerequisites_history_and_unknown_evaluation(
    client_for: Any, analyst: User, winner: Experiment
) -> None:
    env = winner.environment
    dependant = services.flag_create(actor=A, key="needs-it", prerequisites=[{"flag": winner.flag.key,
                                                                              "condition": {"value": "treatment"}}])
    rule_user = services.flag_create(actor=A, key="rule-needs-it")
    services.flag_rule_create(actor=A, flag=rule_user, environment=env, kind="force", variant="on",
                              prerequisites=[{"flag": winner.flag.key}])
    html = client_for(analyst).get(f"/flags/{winner.flag.key}/").content.decode()
    usage = html.split('id="usage-experiments"')[1].split("</div>\n  <div")[0]
    assert winner.key in usage and "running" in usage
    prereq = html.split('id="usage-prerequisites"')[1]
    assert dependant.key in prereq and rule_user.key in prereq
    assert '<div class="value" id="last-evaluated">never</div>' in html
    assert "flag.rule_create" in html  # recent changes from the audit log
    page = client_for(analyst).get(f"/flags/{dependant.key}/").content.decode()
    assert winner.flag.key in page.split("Requires:")[1].split("</p>")[0]
    assert client_for(analyst).get("/flags/no-such-flag/").status_code == 404
