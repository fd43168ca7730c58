"""Roles per environment: the role a user holds in an environment decides what they may do
there, in the API, the admin and the pages alike; tokens may be limited to environments."""

from __future__ import annotations

import itertools
import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEntry
from base import roles
from base.models import ApiToken, Environment, EnvironmentRole
from base.permissions import ENVIRONMENT_ACTIONS, ROLE_ACTIONS, Action, Role, allowed
from experiments.models import Experiment
from flags.models import FlagState
from tests.integration.base.roles import ACTOR, World, build_world, fingerprint, token_client
from tests.integration.base.test_roles_api import write_calls

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


def staff(username: str, *, general: str = "none") -> User:
    """A staff member with no general rights ("none"), read-only ones ("view") or every one ("all")."""
    user = User.objects.create_user(username, f"{username}@example.com", "pw-role-123", is_staff=True)
    if general == "view":
        user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    elif general == "all":
        user.user_permissions.set(Permission.objects.all())
    return user


def grant(user: User, env: Environment, role: Role) -> None:
    roles.environment_role_grant(actor=ACTOR, environment=env, user=user, role=role.value)


def test_role__decides_its_environment_in_both_directions(world: World) -> None:
    production = world.environment
    staging = Environment.objects.get(key="staging")
    everything = staff("everything", general="all")
    grant(everything, production, Role.VIEWER)
    assert not allowed(everything, Action.FLAG_KILL_SWITCH, environment=production)
    assert allowed(everything, Action.FLAG_VIEW, environment=production)
    assert allowed(everything, Action.FLAG_KILL_SWITCH, environment=staging)  # no role there: general rights
    assert allowed(everything, Action.FLAG_CREATE)

    nothing = staff("nothing")
    grant(nothing, staging, Role.EDITOR)
    assert allowed(nothing, Action.FLAG_KILL_SWITCH, environment=staging)
    assert allowed(nothing, Action.EXPERIMENT_START, environment=staging)
    assert not allowed(nothing, Action.CHANGE_APPROVE, environment=staging)
    assert not allowed(nothing, Action.FLAG_KILL_SWITCH, environment=production)
    assert not allowed(nothing, Action.FLAG_KILL_SWITCH)  # a role in one environment grants nothing in general
    assert not allowed(nothing, Action.FLAG_CREATE, environment=staging)  # not an action of an environment


def test_roles__each_includes_the_one_before() -> None:
    order = [Role.VIEWER, Role.EDITOR, Role.PUBLISHER, Role.ADMIN]
    for lower, higher in itertools.pairwise(order):
        assert ROLE_ACTIONS[lower] < ROLE_ACTIONS[higher]
    assert ROLE_ACTIONS[Role.ADMIN] == ENVIRONMENT_ACTIONS
    assert Action.CHANGE_APPROVE in ROLE_ACTIONS[Role.PUBLISHER] - ROLE_ACTIONS[Role.EDITOR]
    assert Action.ENVIRONMENT_CHANGE in ROLE_ACTIONS[Role.ADMIN] - ROLE_ACTIONS[Role.PUBLISHER]
    assert {r.value for r in Role} == set(EnvironmentRole.Role.values)


def test_role__revoked__general_rights_apply_again_at_once(world: World) -> None:
    user = staff("revoked", general="all")
    grant(user, world.environment, Role.VIEWER)
    assert not allowed(user, Action.FLAG_RAMP, environment=world.environment)
    roles.environment_role_revoke(actor=ACTOR, grant=EnvironmentRole.objects.get(user=user))
    assert allowed(user, Action.FLAG_RAMP, environment=world.environment)
    entries = AuditEntry.objects.filter(action__startswith="environment.role_").order_by("pk")
    assert [(e.action, e.before, e.after) for e in entries][-2:] == [
        ("environment.role_grant", None, {"user": "revoked", "role": "viewer"}),
        ("environment.role_revoke", {"user": "revoked", "role": "viewer"}, None)]


def _environment_calls(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    """Every management API write whose URL names the world's environment or one of its experiments."""
    env = world.environment.key
    return [c for c in write_calls(world)
            if f"/environments/{env}" in c[1] or c[1].startswith("/api/v1/experiments/walk-")]


@pytest.mark.parametrize("role", list(Role))
def test_every_environment_write_url__each_role__allowed_exactly_its_actions(world: World, role: Role) -> None:
    user = staff(f"api-{role.value}")
    grant(user, world.environment, role)
    client = token_client(user, ApiToken.Scope.WRITE)
    calls = _environment_calls(world)
    assert len(calls) >= 10
    for method, url, body in calls:
        before = fingerprint()
        response = getattr(client, method)(url, body, format="json")
        refused = response.status_code == 403
        # What the call needs: the environment's own settings need an admin, the rest an editor.
        needs_admin = url.startswith(f"/api/v1/environments/{world.environment.key}")
        may = role in (Role.ADMIN,) if needs_admin else role != Role.VIEWER
        assert refused != may, (role, method, url, response.status_code, response.content[:300])
        if refused:
            assert response.json()["code"] == "permission_denied"
            assert fingerprint() == before, (method, url)


def test_writes_outside_the_roles_environment__refused(world: World) -> None:
    user = staff("staging-editor")
    grant(user, Environment.objects.get(key="staging"), Role.EDITOR)
    client = token_client(user, ApiToken.Scope.WRITE)
    for method, url, body in write_calls(world):
        before = fingerprint()
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
        assert fingerprint() == before


def test_token_limited_to_an_environment__acts_only_there(world: World, admin_user: User) -> None:
    from base import tokens

    staging = Environment.objects.get(key="staging")
    _, raw = tokens.api_token_create(actor=ACTOR, user=admin_user, name="staging only", scope="write",
                                     environments=[staging])
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    flag = world.flag.key
    refused = client.patch(f"/api/v1/flags/{flag}/environments/production", {"enabled": False},
                           content_type="application/json")
    assert refused.status_code == 403 and "staging" in refused.json()["message"]
    assert FlagState.objects.get(flag=world.flag, environment=world.environment).enabled
    shared = client.patch(f"/api/v1/flags/{flag}", {"owner": "x"}, content_type="application/json")
    assert shared.status_code == 403 and "all" in shared.json()["message"]
    assert client.get(f"/api/v1/flags/{flag}").status_code == 200
    done = client.patch(f"/api/v1/flags/{flag}/environments/staging", {"enabled": True},
                        content_type="application/json")
    assert done.status_code == 200, done.content


def test_admin_bulk_action__role_of_the_objects_environment_decides(world: World) -> None:
    user = staff("admin-viewer", general="all")
    grant(user, world.environment, Role.VIEWER)
    client = Client()
    client.force_login(user)
    response = client.post("/admin/experiments/experiment/", {
        "action": "start_experiments", "_selected_action": [str(world.draft.pk)], "index": "0"})
    assert response.status_code == 403
    world.draft.refresh_from_db()
    assert world.draft.status == Experiment.Status.DRAFT


def test_pages__kill_switch__role_of_the_environment_decides(world: World) -> None:
    viewer = staff("page-viewer", general="all")
    grant(viewer, world.environment, Role.VIEWER)
    client = Client()
    client.force_login(viewer)
    url = f"/flags/{world.flag.key}/environments/{world.environment.key}/switch"
    assert client.post(url, {"enabled": "0"}).status_code == 403
    assert FlagState.objects.get(flag=world.flag, environment=world.environment).enabled

    editor = staff("page-editor")
    grant(editor, world.environment, Role.EDITOR)
    client.force_login(editor)
    assert client.post(url, {"enabled": "0"}).status_code == 302
    assert not FlagState.objects.get(flag=world.flag, environment=world.environment).enabled


def test_roles_admin__environment_admin_grants__others_refused(world: World) -> None:
    boss = staff("env-admin")
    grant(boss, world.environment, Role.ADMIN)
    newcomer = staff("newcomer")
    client = Client()
    client.force_login(boss)
    response = client.post("/admin/base/environmentrole/add/", {
        "environment": world.environment.pk, "user": newcomer.pk, "role": "publisher"})
    assert response.status_code == 302, response.content[:500]
    assert EnvironmentRole.objects.get(user=newcomer).role == "publisher"
    staging = Environment.objects.get(key="staging")
    refused = client.post("/admin/base/environmentrole/add/", {
        "environment": staging.pk, "user": newcomer.pk, "role": "admin"})
    # Staging is not offered to them: the form refuses the choice.
    assert refused.status_code == 200 and b"Select a valid choice" in refused.content
    assert not EnvironmentRole.objects.filter(environment=staging).exists()


def test_grant__unknown_role_or_non_staff__refused(world: World) -> None:
    from config.errors import ValidationFailed

    user = staff("someone")
    with pytest.raises(ValidationFailed):
        roles.environment_role_grant(actor=ACTOR, environment=world.environment, user=user, role="owner")
    customer = User.objects.create_user("customer-role", password="pw-x-12345")
    with pytest.raises(ValidationFailed):
        roles.environment_role_grant(actor=ACTOR, environment=world.environment, user=customer, role="viewer")


def test_create_token_command__environment_option(world: World, admin_user: User) -> None:
    out = StringIO()
    call_command("create_token", "--user", admin_user.username, "--scope", "write", "--environment", "staging",
                 "--json", stdout=out)
    printed = json.loads(out.getvalue())
    assert printed["environments"] == ["staging"]
    token = ApiToken.objects.get(prefix=printed["prefix"])
    assert [e.key for e in token.environments.all()] == ["staging"]
    with pytest.raises(Exception, match="No environment named nowhere"):
        call_command("create_token", "--user", admin_user.username, "--scope", "read", "--environment", "nowhere")
