"""Reviewed environments: a write through the API becomes a change request, served only once
another user with the right to approve approves it; self-approval is refused; a change request
whose base revision moved is conflicting and cannot be applied; scheduled changes wait for
their time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.types import Actor
from base import roles
from base.change_requests import change_request_approve, change_requests_apply_due
from base.models import ApiToken, ChangeRequest, Environment
from base.reviews import ChangeRequested
from flags import services
from flags.models import Flag, FlagState, Rule
from tests.integration.base.roles import token_client

pytestmark = pytest.mark.django_db

SYSTEM = Actor(label="setup", via="system")


def staff(username: str) -> User:
    return User.objects.create_user(username, f"{username}@example.com", "pw-review-123", is_staff=True)


class Team:
    def __init__(self, environments: dict[str, Environment]) -> None:
        self.production = environments["production"]
        self.staging = environments["staging"]
        self.author = staff("ana")
        self.publisher = staff("pia")
        self.other_publisher = staff("paul")
        for user, role in ((self.author, "publisher"), (self.publisher, "publisher"),
                           (self.other_publisher, "publisher")):
            roles.environment_role_grant(actor=SYSTEM, environment=self.production, user=user, role=role)
        roles.environment_role_grant(actor=SYSTEM, environment=self.staging, user=self.author, role="editor")
        editor = staff("ed")
        roles.environment_role_grant(actor=SYSTEM, environment=self.production, user=editor, role="editor")
        self.editor = token_client(editor, ApiToken.Scope.WRITE)
        self.ana = token_client(self.author, ApiToken.Scope.WRITE)
        self.pia = token_client(self.publisher, ApiToken.Scope.WRITE)
        self.paul = token_client(self.other_publisher, ApiToken.Scope.WRITE)
        self.flag = services.flag_create(actor=SYSTEM, key="checkout",
                                         variants=[{"key": "old", "value": "old"}, {"key": "new", "value": "new"}],
                                         value_type="string")
        services.flag_state_update(actor=SYSTEM, flag=self.flag, environment=self.production, enabled=True)
        Environment.objects.filter(pk=self.production.pk).update(requires_review=True)
        self.production.refresh_from_db()


@pytest.fixture
def team(environments: dict[str, Environment]) -> Team:
    return Team(environments)


def served(environment: Environment, key: str = "checkout", unit: str = "u-1") -> Any:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=environment.server_key)
    response = client.post(f"/ofrep/v1/evaluate/flags/{key}", {"context": {"targetingKey": unit}}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["value"]


def rule_url(team: Team) -> str:
    return f"/api/v1/flags/checkout/environments/{team.production.key}/rules"


def test_reviewed_environment__write_is_a_change_request__served_after_another_users_approval(team: Team) -> None:
    assert served(team.production) == "old"
    response = team.ana.post(rule_url(team) + "?comment=" + quote("Ship the new checkout ✓"),
                             {"kind": "force", "variant": "new"}, format="json")
    assert response.status_code == 202, response.content
    request = response.json()["change_request"]
    assert (request["status"], request["operation"]) == ("open", "flag.rule_create")
    assert request["author"].startswith("ana")
    assert request["comment"] == "Ship the new checkout ✓"
    assert request["environment"] == "production" and request["object"] == {"type": "flag", "key": "checkout"}
    [change] = request["changes"]
    assert list(change["before"]["environments"]) == ["production"]
    [(path, added)] = change["diff"].items()
    assert path.startswith("environments.production.rules[") and added["before"] is None
    assert added["after"]["variant"] == "new"
    assert not Rule.objects.exists()
    assert served(team.production) == "old"

    refused = team.ana.post(f"/api/v1/change-requests/{request['id']}/approve", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert "You proposed change request" in refused.json()["message"]
    assert served(team.production) == "old"

    approved = team.pia.post(f"/api/v1/change-requests/{request['id']}/approve", {"comment": "Looks right"},
                             format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "applied" and approved.json()["reviewer"].startswith("pia")
    assert served(team.production) == "new"
    entry = AuditEntry.objects.get(action="flag.rule_create", object_key="checkout")
    assert entry.actor_id == team.author.pk and "approved by pia" in entry.actor_label
    approval = AuditEntry.objects.get(action="change_request.approve")
    assert approval.actor_id == team.publisher.pk
    assert AuditEntry.objects.filter(action="change_request.open", actor_id=team.author.pk).count() == 1


def test_conflicting_change_request__base_revision_moved__409_and_never_applied(team: Team) -> None:
    first = team.ana.patch("/api/v1/flags/checkout/environments/production", {"default_variant": "new"},
                           format="json").json()["change_request"]
    second = team.ana.post(rule_url(team), {"kind": "force", "variant": "old", "condition": {"country": "DE"}},
                           format="json").json()["change_request"]
    assert team.pia.post(f"/api/v1/change-requests/{first['id']}/approve", {}, format="json").status_code == 200
    before = (list(Rule.objects.values_list("uid", flat=True)), served(team.production))

    conflict = team.paul.post(f"/api/v1/change-requests/{second['id']}/approve", {}, format="json")
    assert conflict.status_code == 409, conflict.content
    assert conflict.json()["code"] == "change_request_conflicting"
    assert ChangeRequest.objects.get(pk=second["id"]).status == "conflicting"
    assert (list(Rule.objects.values_list("uid", flat=True)), served(team.production)) == before
    again = team.paul.post(f"/api/v1/change-requests/{second['id']}/approve", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "change_request_not_open"


def test_change_in_another_environment__does_not_move_the_base_revision(team: Team) -> None:
    request = team.ana.post(rule_url(team), {"kind": "force", "variant": "new"}, format="json").json()
    services.flag_state_update(actor=SYSTEM, flag=team.flag, environment=team.staging, default_variant="new")
    done = team.pia.post(f"/api/v1/change-requests/{request['change_request']['id']}/approve", {}, format="json")
    assert done.status_code == 200, done.content


def test_kill_switch__exempt_by_default__reviewed_when_the_setting_is_off(team: Team) -> None:
    url = "/api/v1/flags/checkout/environments/production"
    assert team.editor.patch(url, {"enabled": False}, format="json").status_code == 200
    assert served(team.production) == "old"  # off: the off variant
    boss = token_client(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    assert boss.patch("/api/v1/environments/production", {"review_exempts_kill_switch": False},
                      format="json").json()["review_exempts_kill_switch"] is False
    response = team.editor.patch(url, {"enabled": True}, format="json")
    assert response.status_code == 202
    assert FlagState.objects.get(flag=team.flag, environment=team.production).enabled is False


def test_reject_and_cancel__nothing_applied__roles_enforced(team: Team) -> None:
    first = team.editor.post(rule_url(team), {"kind": "force", "variant": "new"}, format="json").json()
    second = team.editor.post(rule_url(team), {"kind": "force", "variant": "new"}, format="json").json()
    first_id, second_id = first["change_request"]["id"], second["change_request"]["id"]
    assert team.editor.post(f"/api/v1/change-requests/{first_id}/approve", {}, format="json").status_code == 403
    rejected = team.pia.post(f"/api/v1/change-requests/{first_id}/reject", {"comment": "Not now"}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    cancelled = team.editor.post(f"/api/v1/change-requests/{second_id}/cancel", format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert team.pia.post(f"/api/v1/change-requests/{second_id}/approve", {}, format="json").status_code == 409
    assert not Rule.objects.exists()
    listed = team.pia.get("/api/v1/change-requests?environment=production&status=rejected").json()
    assert [r["id"] for r in listed["results"]] == [first_id]
    assert team.pia.get("/api/v1/change-requests?environment=production&status=nonsense").status_code == 400
    assert team.pia.get("/api/v1/change-requests").status_code == 403  # no role in every environment
    assert team.pia.get("/api/v1/change-requests/999999").status_code == 404


def test_bad_input__4xx_json__no_change_request(team: Team) -> None:
    bad_rule = team.ana.post(rule_url(team), {"kind": "force", "variant": "missing"}, format="json")
    assert bad_rule.status_code == 400
    too_long = team.ana.post(rule_url(team) + "?comment=" + "x" * 2001, {"kind": "force", "variant": "new"},
                             format="json")
    assert too_long.status_code == 400 and "comment" in too_long.json()["details"]
    for value in ("tomorrow", "2020-01-01T00:00:00+00:00", "2030-01-01T00:00:00",
                  (timezone.now() + timedelta(days=400)).isoformat()):
        response = team.ana.post(rule_url(team) + "?apply_at=" + quote(value), {"kind": "force", "variant": "new"},
                                 format="json")
        assert response.status_code == 400 and "apply_at" in response.json()["details"], value
    long_review = team.pia.post("/api/v1/change-requests/1/approve", {"comment": "x" * 2001}, format="json")
    assert long_review.status_code in (400, 404)
    assert not ChangeRequest.objects.exists()


def test_segment_used_in_a_reviewed_environment__change_is_reviewed(team: Team) -> None:
    segment = services.segment_create(actor=SYSTEM, key="beta", condition={"plan": "beta"})
    services.flag_rule_create(actor=SYSTEM, flag=team.flag, environment=team.production, kind="force",
                              variant="new", segments=["beta"])
    assert served(team.production, unit="u-2") == "old"
    team.author.user_permissions.add(Permission.objects.get(codename="change_segment"))  # segments are shared
    response = team.ana.patch("/api/v1/segments/beta", {"condition": {"plan": {"$ne": "beta"}}}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["change_request"]["object"] == {"type": "segment", "key": "beta"}
    segment.refresh_from_db()
    assert segment.condition == {"plan": "beta"}
    team.pia.post(f"/api/v1/change-requests/{response.json()['change_request']['id']}/approve", {}, format="json")
    assert served(team.production, unit="u-2") == "new"


def test_system_writes__pass_the_gate(team: Team) -> None:
    services.flag_rule_create(actor=SYSTEM, flag=team.flag, environment=team.production, kind="force",
                              variant="new")
    assert served(team.production) == "new"


def test_service_call_in_a_reviewed_environment__raises_change_requested_with_the_request(team: Team) -> None:
    actor = Actor(label="ana", user_id=team.author.pk, via="admin")
    with pytest.raises(ChangeRequested) as raised:
        services.flag_state_update(actor=actor, flag=team.flag, environment=team.production, default_variant="new")
    assert raised.value.change_request.status == "open"
    assert raised.value.body()["change_request"]["operation"] == "flag.state_update"
    done = change_request_approve(actor=Actor(label="pia", user_id=team.publisher.pk, via="admin"),
                                  change_request=raised.value.change_request)
    assert done.status == "applied"
    assert FlagState.objects.get(flag=team.flag, environment=team.production).default_variant == "new"


def test_scheduled_change__not_reviewed_environment__applied_at_its_time_once(team: Team) -> None:
    staging_url = "/api/v1/flags/checkout/environments/staging"
    at = timezone.now() + timedelta(hours=2)
    response = team.ana.patch(f"{staging_url}?apply_at={quote(at.isoformat())}", {"default_variant": "new"},
                              format="json")
    assert response.status_code == 202, response.content
    request = response.json()["change_request"]
    assert request["status"] == "approved" and request["apply_at"] == at.isoformat()
    assert change_requests_apply_due() == {"applied": 0, "conflicting": 0}
    assert FlagState.objects.get(flag=team.flag, environment=team.staging).default_variant == "old"
    assert change_requests_apply_due(now=at + timedelta(seconds=1)) == {"applied": 1, "conflicting": 0}
    assert change_requests_apply_due(now=at + timedelta(seconds=2)) == {"applied": 0, "conflicting": 0}
    assert FlagState.objects.get(flag=team.flag, environment=team.staging).default_variant == "new"
    actions = list(AuditEntry.objects.filter(object_type="change_request").order_by("pk")
                   .values_list("action", "actor_label"))
    assert actions[0][0] == "change_request.schedule" and actions[0][1].startswith("ana")
    assert actions[-1] == ("change_request.apply", "schedule")
    change = AuditEntry.objects.get(action="flag.state_update", environment="staging")
    assert change.actor_label.startswith("schedule (ana") and change.actor_id == team.author.pk


def test_scheduled_change__reviewed_environment__approved_then_applied_by_the_schedule(team: Team) -> None:
    at = timezone.now() + timedelta(hours=1)
    response = team.ana.post(f"{rule_url(team)}?apply_at={quote(at.isoformat())}", {"kind": "force", "variant": "new"},
                             format="json")
    request_id = response.json()["change_request"]["id"]
    assert response.json()["change_request"]["status"] == "open"
    approved = team.pia.post(f"/api/v1/change-requests/{request_id}/approve", {}, format="json").json()
    assert approved["status"] == "approved" and not Rule.objects.exists()
    assert change_requests_apply_due(now=at) == {"applied": 1, "conflicting": 0}
    assert served(team.production) == "new"
    assert Flag.objects.count() == 1


def test_apply_at_on_a_write_that_cannot_wait__refused_and_undone(team: Team) -> None:
    at = quote((timezone.now() + timedelta(hours=1)).isoformat())
    boss = token_client(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    response = boss.post(f"/api/v1/flags?apply_at={at}", {"key": "later"}, format="json")
    assert response.status_code == 400 and "apply_at" in response.json()["details"]
    assert not Flag.objects.filter(key="later").exists()
