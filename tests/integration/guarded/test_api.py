"""The management API of guarded rollouts: start, read with the decisions, pause, resume, roll
back; bad input is a 400 naming each field and writes nothing; a read-only token cannot write."""

from __future__ import annotations

from rest_framework.test import APIClient

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
