"""Change requests with a real Celery worker: a reviewed write waits for a second user's
approval and then for its time, and the worker applies it once; a scheduled change where no
review is required is applied by the worker too."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from base.models import ChangeRequest, Environment
from base.tasks import change_requests_apply_due_task
from tests.integration.base.test_change_requests import Team, rule_url, served
from tests.integration.experiments.conftest import celery_worker, celery_workers  # noqa: F401 - fixtures

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def wait_until_applied(pk: int) -> ChangeRequest:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        request = ChangeRequest.objects.get(pk=pk)
        if request.status != ChangeRequest.Status.APPROVED:
            return request
        time.sleep(0.3)
    pytest.fail(f"Change request #{pk} was not applied by the worker.")


def test_reviewed_and_scheduled__served_only_after_approval_and_its_time__applied_once_by_the_worker(
    celery_worker: subprocess.Popen[bytes], environments: dict[str, Environment],  # noqa: F811
) -> None:
    team = Team(environments)
    at = timezone.now() + timedelta(hours=1)
    response = team.ana.post(f"{rule_url(team)}?apply_at={quote(at.isoformat())}&comment=Launch",
                             {"kind": "force", "variant": "new"}, format="json")
    assert response.status_code == 202, response.content
    pk = response.json()["change_request"]["id"]
    assert served(team.production) == "old"
    assert team.ana.post(f"/api/v1/change-requests/{pk}/approve", {}, format="json").status_code == 403
    approved = team.pia.post(f"/api/v1/change-requests/{pk}/approve", {}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"

    change_requests_apply_due_task.delay()  # not due yet: nothing happens
    time.sleep(2)
    assert ChangeRequest.objects.get(pk=pk).status == "approved"
    assert served(team.production) == "old"

    ChangeRequest.objects.filter(pk=pk).update(apply_at=timezone.now() - timedelta(seconds=1))
    change_requests_apply_due_task.delay()
    change_requests_apply_due_task.delay()
    request = wait_until_applied(pk)
    assert request.status == "applied", request.note
    assert served(team.production) == "new"
    assert AuditEntry.objects.filter(action="flag.rule_create").count() == 1
    applied = AuditEntry.objects.get(action="flag.rule_create")
    assert applied.actor_label.startswith("schedule (ana") and "approved by pia" in applied.actor_label
    assert list(AuditEntry.objects.filter(object_type="change_request", object_key=str(pk)).order_by("pk")
                .values_list("action", flat=True)) == ["change_request.open", "change_request.approve",
                                                       "change_request.apply"]


def test_scheduled_change_without_review__applied_by_the_worker(
    celery_worker: subprocess.Popen[bytes], environments: dict[str, Environment],  # noqa: F811
) -> None:
    team = Team(environments)
    at = timezone.now() + timedelta(minutes=5)
    response = team.ana.patch(f"/api/v1/flags/checkout/environments/staging?apply_at={quote(at.isoformat())}",
                              {"enabled": True, "default_variant": "new"}, format="json")
    assert response.status_code == 202, response.content
    pk = response.json()["change_request"]["id"]
    assert served(team.staging) != "new"
    ChangeRequest.objects.filter(pk=pk).update(apply_at=timezone.now() - timedelta(seconds=1))
    change_requests_apply_due_task.delay()
    assert wait_until_applied(pk).status == "applied"
    assert served(team.staging) == "new"
