"""The management API of guarded rollouts: start, read with the decisions, pause, resume, roll
back; bad input is a 400 naming each field and writes nothing; a read-only token cannot write."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from audit.types import Actor
from base.change_requests import change_request_approve
from base.models import ChangeRequest, Environment
from experiments.models import Experiment, Metric
from flags.models import Rule
from guarded.models import GuardedRollout
from tests.integration.guarded.conftest import start_body

URL = "/api/v1/flags/checkout/environments/production/guarded-rollouts"


def test_start_read_pause_resume_rollback(write_client: APIClient, rollout_rule: Rule, purchase: Metric) -> None:
    response = write_client.post(URL, start_body(rollout_rule), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["percent"], body["next_step"]["percent"]) == ("running", 10.0, 50.0)
    assert [d["action"] for d in body["decisions"]] == ["started"]
    detail = f"{URL}/{body['id']}"
    assert write_client.get(URL).json()[0]["id"] == body["id"]
    paused = write_client.post(f"{detail}/pause", {"reason": "Looking first."}, format="json").json()
    assert (paused["status"], paused["reason"]) == ("paused", "Looking first.")
    assert write_client.post(f"{detail}/resume", {}, format="json").json()["status"] == "running"
    rolled = write_client.post(f"{detail}/rollback", {}, format="json").json()
    assert (rolled["status"], rolled["percent"]) == ("rolled_back", 0.0)
    again = write_client.post(f"{detail}/pause", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "rollout_finished"
    assert write_client.get(f"{URL}/999999").status_code == 404


def test_bad_input__400_with_fields__nothing_written(write_client: APIClient, rollout_rule: Rule,
                                                     purchase: Metric) -> None:
    body = start_body(rollout_rule, steps=[{"percent": 5, "min_duration_seconds": 60}, {"percent": 90}],
                      guardrails=[{"metric": "purchase", "threshold": 3}], alpha=0.9)
    response = write_client.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    fields = set(response.json()["details"])
    assert {"steps[1].percent", "guardrails[0].threshold", "alpha"} <= fields
    assert write_client.post(URL, {**start_body(rollout_rule), "extra": 1}, format="json").status_code == 400
    missing = write_client.post(URL, {**start_body(rollout_rule), "rule_id": "r_nope"}, format="json")
    assert missing.status_code == 404
    assert not GuardedRollout.objects.exists() and not Experiment.objects.exists()


def test_read_only_token__cannot_start(read_client: APIClient, rollout_rule: Rule, purchase: Metric) -> None:
    assert read_client.post(URL, start_body(rollout_rule), format="json").status_code == 403
    assert read_client.get(URL).status_code == 200


def test_reviewed_environment__start_is_one_change_request__applied_on_approval(
    write_client: APIClient, rollout_rule: Rule, purchase: Metric, production: Environment,
) -> None:
    Environment.objects.filter(pk=production.pk).update(requires_review=True)
    response = write_client.post(URL, start_body(rollout_rule), format="json")
    assert response.status_code == 202, response.content
    assert not GuardedRollout.objects.exists() and not Experiment.objects.exists()
    [request] = ChangeRequest.objects.all()
    approver = User.objects.create_superuser("pia", "pia@example.com", "pw-pia-12345")
    change_request_approve(actor=Actor(label="pia", user_id=approver.pk, via="api"), change_request=request)
    rollout = GuardedRollout.objects.get()
    assert (rollout.status, rollout.percent) == ("running", 10.0)
    # Rolling back by hand is made at once, like the kill switch.
    rolled = write_client.post(f"{URL}/{rollout.pk}/rollback", {}, format="json")
    assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back"
    assert Rule.objects.get(uid=rollout_rule.uid).coverage == 0.0
