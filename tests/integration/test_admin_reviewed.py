"""The admin in a reviewed environment: saving a flag's rules there stores a change request
(outside the admin's own transaction, which rolls back) and opens its review page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from audit.types import Actor
from base.change_requests import environment_review_set
from base.models import ChangeRequest, Environment
from flags import services
from flags.models import FlagState, Rule
from tests.integration.conftest_admin import add_inline_form, read_form
from tests.integration.test_admin_flags import _rule

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def test_flagstate_change__reviewed_environment__change_request_and_its_review_page(
    admin_client: Client, environments: dict[str, Environment],
) -> None:
    flag = services.flag_create(actor=SYSTEM, key="new-checkout")
    environment_review_set(actor=SYSTEM, environment=environments["production"], requires_review=True)
    state = FlagState.objects.get(flag=flag, environment__key="production")
    url = reverse("admin:flags_flagstate_change", args=[state.pk])
    data: dict[str, Any] = read_form(admin_client, url, "flagstate_form")
    add_inline_form(data, "rules", _rule(kind="rollout", percentage="25"))

    response = admin_client.post(url, data)

    request = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:base_changerequest_change", args=[request.pk])
    assert [m.level_tag for m in get_messages(response.wsgi_request)] == ["info"]
    assert request.operation == "flag.rules_replace" and request.status == "open"
    assert not Rule.objects.exists()
    page = admin_client.get(response["Location"]).content.decode()
    assert "Replace the rules of flag new-checkout in production" in page and "You proposed this change" in page
    assert "diff-words" in page
