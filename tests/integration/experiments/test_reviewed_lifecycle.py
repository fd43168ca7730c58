"""Experiments in a reviewed environment: starting, ramping and stopping through the API each
become a change request, applied (experiment, phase and flag rule together) when another user
approves it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from audit.types import Actor
from base.change_requests import environment_review_set
from base.models import ChangeRequest, Environment
from experiments.models import Experiment, Metric
from flags.models import Flag, Rule
from tests.integration.base.roles import token_client
from tests.integration.experiments.conftest import create_experiment


def test_start_ramp_stop__each_a_change_request__applied_on_approval(
    write_client: APIClient, checkout_flag: Flag, production: Environment, metrics: dict[str, Metric], actor: Any,
) -> None:
    experiment = create_experiment(actor, checkout_flag, production, list(metrics), start=False)
    environment_review_set(actor=Actor.system(), environment=production, requires_review=True)
    reviewer = token_client(User.objects.create_superuser("rita", "rita@example.com", "pw-rita-123"))

    def approve(response: Any) -> None:
        assert response.status_code == 202, response.content
        pk = response.json()["change_request"]["id"]
        done = reviewer.post(f"/api/v1/change-requests/{pk}/approve", {}, format="json")
        assert done.status_code == 200 and done.json()["status"] == "applied", done.content

    started = write_client.post(f"/api/v1/experiments/{experiment.key}/start", {}, format="json")
    assert Experiment.objects.get(pk=experiment.pk).status == "draft" and not Rule.objects.exists()
    approve(started)
    experiment.refresh_from_db()
    assert experiment.status == "running" and Rule.objects.filter(uid=experiment.rule_uid).exists()

    approve(write_client.post(f"/api/v1/experiments/{experiment.key}/ramp", {"coverage": 0.5}, format="json"))
    assert Rule.objects.get(uid=Experiment.objects.get(pk=experiment.pk).rule_uid).coverage == 0.5

    approve(write_client.post(f"/api/v1/experiments/{experiment.key}/stop", {"decision": "rollback"},
                              format="json"))
    assert Experiment.objects.get(pk=experiment.pk).status == "stopped" and not Rule.objects.exists()
    assert list(ChangeRequest.objects.order_by("pk").values_list("operation", flat=True)) == [
        "experiment.start", "experiment.ramp", "experiment.stop"]
