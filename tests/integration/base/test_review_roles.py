"""Every write path of a reviewed environment walked as each role: a viewer is refused, the
others' changes of what it serves become change requests (the kill switch excepted), nothing
is served before review; only publishers and admins who did not propose it review it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from base import change_requests
from base.models import ApiToken, ChangeRequest, Environment
from base.permissions import Role
from tests.integration.base.roles import ACTOR, World, build_world, fingerprint, token_client
from tests.integration.base.test_environment_roles import _environment_calls, grant, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(db: Any) -> World:
    built = build_world()
    change_requests.environment_review_set(actor=ACTOR, environment=built.environment, requires_review=True)
    return built


def served_state() -> dict[str, Any]:
    """The fingerprint without the change requests and the audit log (a proposal writes those)."""
    state = fingerprint()
    state.pop("base.ChangeRequest", None)
    state.pop("audit", None)
    state.pop("audit.AuditEntry", None)
    return state


@pytest.mark.parametrize("role", list(Role))
def test_every_write_of_a_reviewed_environment__each_role__refused_or_proposed(world: World, role: Role) -> None:
    user = staff(f"reviewed-{role.value}")
    grant(user, world.environment, role)
    client = token_client(user, ApiToken.Scope.WRITE)
    calls = _environment_calls(world)
    assert len(calls) >= 10
    proposed = 0
    for method, url, body in calls:
        before = served_state()
        response = getattr(client, method)(url, body, format="json")
        settings = url.startswith(f"/api/v1/environments/{world.environment.key}")
        may = role == Role.ADMIN if settings else role != Role.VIEWER
        if not may:
            assert response.status_code == 403, (role, method, url, response.status_code)
            assert served_state() == before
            continue
        assert response.status_code in (200, 201, 202, 204, 400, 409), (role, method, url, response.content[:300])
        answer = response.json() if response.content else {}
        if "change_request" in answer:
            proposed += 1
            assert response.status_code == 202
            request = answer["change_request"]
            assert request["status"] == "open" and request["environment"] == world.environment.key
            assert served_state() == before, (method, url)
        elif not settings and response.status_code < 300:
            # Applied at once: only the kill switch, cancelling planned ramp steps, pausing or rolling
            # back a guarded rollout (all stop changes rather than make them) and a readout (which
            # changes nothing served).
            kill_switch = url.endswith(f"/environments/{world.environment.key}") and body == {"enabled": False}
            ramp_cancel = method == "delete" and url.endswith("/ramp")
            guard_stop = "/guarded-rollouts/" in url and url.endswith(("/pause", "/rollback"))
            assert kill_switch or ramp_cancel or guard_stop or url.endswith("/refresh"), (method, url,
                                                                                         response.status_code)
    if role != Role.VIEWER:
        assert proposed >= 5


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_review__each_role__only_publishers_and_admins(world: World, role: Role, decision: str) -> None:
    author = staff("author")
    grant(author, world.environment, Role.EDITOR)
    proposal = token_client(author).patch(f"/api/v1/flags/{world.flag.key}/environments/{world.environment.key}",
                                          {"default_variant": "on"}, format="json")
    assert proposal.status_code == 202, proposal.content
    pk = proposal.json()["change_request"]["id"]
    reviewer = staff(f"reviewer-{role.value}")
    grant(reviewer, world.environment, role)
    response = token_client(reviewer).post(f"/api/v1/change-requests/{pk}/{decision}", {}, format="json")
    if role in (Role.PUBLISHER, Role.ADMIN):
        assert response.status_code == 200, response.content
        assert ChangeRequest.objects.get(pk=pk).status == ("applied" if decision == "approve" else "rejected")
    else:
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
        assert ChangeRequest.objects.get(pk=pk).status == "open"


def test_review__publisher_of_another_environment__refused(world: World) -> None:
    author = staff("author")
    grant(author, world.environment, Role.EDITOR)
    pk = token_client(author).patch(f"/api/v1/flags/{world.flag.key}/environments/{world.environment.key}",
                                    {"default_variant": "on"}, format="json").json()["change_request"]["id"]
    outsider: User = staff("staging-publisher")
    grant(outsider, Environment.objects.get(key="staging"), Role.PUBLISHER)
    response = token_client(outsider).post(f"/api/v1/change-requests/{pk}/approve", {}, format="json")
    assert response.status_code == 403
    assert ChangeRequest.objects.get(pk=pk).status == "open"
