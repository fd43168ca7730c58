"""Flag pages in a reviewed environment: a ramp planned on the page becomes a change request (an
information, not an error, and nothing served), listed on the flag page until it is reviewed;
the kill switch still applies at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.utils import timezone

from audit.types import Actor
from base.change_requests import change_request_approve, environment_review_set
from base.models import ChangeRequest
from flags import services
from flags.models import FlagState, Rule
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


def test_ramp_page__reviewed_environment__change_request_listed_on_the_flag_page(
    client_for: Any, analyst: User,
) -> None:
    env = factories.environment()
    flag = services.flag_create(actor=factories.ACTOR, key="new-search")
    services.flag_state_update(actor=factories.ACTOR, flag=flag, environment=env, enabled=True)
    environment_review_set(actor=factories.ACTOR, environment=env, requires_review=True)
    client = client_for(analyst)
    response = client.post(f"/flags/{flag.key}/ramps/new", {
        "environment": env.key, "variant": "on", "percents": "5, 25, 50, 100",
        "start": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "interval_hours": "24",
        "position": "bottom",
    })
    assert response.status_code == 302
    [message] = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    request = ChangeRequest.objects.get()
    assert message == ("info", f"{env.key} requires review: the change is change request #{request.pk}, served "
                               "once another publisher approves it.")
    assert request.operation == "flag.ramp_create" and len(request.changes) == 1
    assert not Rule.objects.exists()
    page = client.get(f"/flags/{flag.key}/").content.decode()
    assert "Awaiting review" in page and f"#{request.pk}" in page and "changes reviewed" in page

    reviewer = User.objects.create_superuser("rita", "rita@example.com", "pw-rita-123")
    done = change_request_approve(actor=Actor(label="rita", user_id=reviewer.pk, via="admin"), change_request=request)
    assert done.status == "applied"
    assert sorted(Rule.objects.values_list("coverage", flat=True)) == [0.05, 0.25, 0.5, 1.0]
    assert "Awaiting review" not in client.get(f"/flags/{flag.key}/").content.decode()

    switched = client.post(f"/flags/{flag.key}/environments/{env.key}/switch", {"enabled": "0"})
    assert switched.status_code == 302
    assert FlagState.objects.get(flag=flag, environment=env).enabled is False
