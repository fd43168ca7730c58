"""A guarded rollout in a reviewed environment: starting it is one change request (the experiment
and the rule changes it makes included), applied when another user approves it; rolling it back
is exempt, as the kill switch is."""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from audit.types import Actor
from base.change_requests import environment_review_set
from base.models import ChangeRequest, Environment
from experiments.models import Metric
from flags.models import Rule
from guarded.models import GuardedRollout
from tests.integration.base.roles import token_client
from tests.integration.guarded.conftest import start_body

URL = "/api/v1/flags/checkout/environments/production/guarded-rollouts"


def test_start__one_change_request__applied_on_approval__rollback_exempt(
    write_client: APIClient, rollout_rule: Rule, purchase: Metric, production: Environment,
) -> None:
    environment_review_set(actor=Actor.system(), environment=production, requires_review=True)
    response = write_client.post(URL, start_body(rollout_rule), format="json")
    assert response.status_code == 202, response.content
    request = response.json()["change_request"]
    assert request["operation"] == "rollout.start"
    assert not GuardedRollout.objects.exists() and ChangeRequest.objects.count() == 1

    reviewer = token_client(User.objects.create_superuser("rita", "rita@example.com", "pw-rita-123"))
    approved = reviewer.post(f"/api/v1/change-requests/{request['id']}/approve", {}, format="json")
    assert approved.status_code == 200, approved.content
    rollout = GuardedRollout.objects.get()
    assert rollout.status == GuardedRollout.Status.RUNNING

    rolled = write_client.post(f"{URL}/{rollout.pk}/rollback", {}, format="json")
    assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back"
    assert ChangeRequest.objects.count() == 1
