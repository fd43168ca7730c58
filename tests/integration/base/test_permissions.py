"""The permission service: its vocabulary, the model permissions that grant each action, and
who is allowed what."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied

from base.models import Environment
from base.permissions import RULES, Action, allowed, require
from config.errors import Forbidden
from tests.integration.base.roles import read_only_user

pytestmark = pytest.mark.django_db


def _staff(*codenames: str, **fields: Any) -> User:
    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True, **fields)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_vocabulary__every_action_has_a_rule_granted_by_existing_permissions() -> None:
    assert set(RULES) == set(Action)
    existing = {f"{app}.{code}" for app, code in Permission.objects.values_list("content_type__app_label", "codename")}
    for action, rule in RULES.items():
        assert rule.granted_by, action
        assert set(rule.granted_by) <= existing, (action, set(rule.granted_by) - existing)
        assert rule.writes == (not action.value.endswith(".view")), action


def test_read_only_role__every_view_action__no_write_action() -> None:
    user = read_only_user()
    for action in Action:
        assert allowed(user, action) is (not action.writes), action


def test_superuser__everything__unless_inactive_or_not_staff() -> None:
    boss = User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    assert all(allowed(boss, action) for action in Action)
    boss.is_staff = False
    assert not any(allowed(boss, action) for action in Action)
    boss.is_staff, boss.is_active = True, False
    assert not any(allowed(boss, action) for action in Action)


def test_model_permission__grants_the_actions_mapped_to_it_and_no_other() -> None:
    user = _staff("change_experiment")
    granted = {action for action in Action if allowed(user, action)}
    assert granted == {Action.EXPERIMENT_VIEW, Action.EXPERIMENT_CHANGE, Action.EXPERIMENT_START,
                       Action.EXPERIMENT_STOP, Action.EXPERIMENT_ARCHIVE, Action.EXPERIMENT_REFRESH,
                       Action.EXPERIMENT_RAMP, Action.CHANGE_CANCEL}  # an author withdraws their request


def test_not_staff__nothing_whatever_the_model_permissions() -> None:
    user = User.objects.create_user("customer", password="pw-customer-123")
    user.user_permissions.set(Permission.objects.all())
    assert not any(allowed(user, action) for action in Action)


def test_require__refused__forbidden_403_naming_the_action_and_the_environment() -> None:
    user = _staff("view_flag")
    env = Environment(key="production", name="Production")
    require(user, Action.FLAG_VIEW)
    with pytest.raises(Forbidden) as caught:
        require(user, Action.FLAG_KILL_SWITCH, environment=env)
    assert isinstance(caught.value, PermissionDenied) and caught.value.status == 403
    assert caught.value.code == "permission_denied" and caught.value.details == {"action": "flag.kill_switch"}
    assert "in production" in caught.value.message
