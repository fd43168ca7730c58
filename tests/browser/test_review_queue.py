"""The review queue in headless Chromium: a publisher finds an open change request, reads its
diff in words and approves it; its author sees no approve button on their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from audit.types import Actor
from base import roles
from base.change_requests import environment_review_set
from base.models import ChangeRequest
from base.reviews import ChangeRequested
from flags import services
from flags.models import Rule
from tests.browser.chromium import chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SYSTEM = Actor.system("setup")


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as browser:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        yield page


def publisher(username: str, environment: Any) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", f"{username}-password-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    roles.environment_role_grant(actor=SYSTEM, environment=environment, user=user, role="publisher")
    return user


def sign_in(page: Any, base: str, username: str, next_url: str) -> None:
    page.goto(f"{base}/admin/login/?next={next_url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-password-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def test_review_queue__publisher_approves_with_the_diff_in_words__author_cannot(
    live_server: Any, browser_page: Any
) -> None:
    production = services.environment_create(actor=SYSTEM, key="production")
    flag = services.flag_create(actor=SYSTEM, key="checkout")
    services.flag_state_update(actor=SYSTEM, flag=flag, environment=production, enabled=True)
    environment_review_set(actor=SYSTEM, environment=production, requires_review=True)
    ana, _ = publisher("ana", production), publisher("pia", production)
    with pytest.raises(ChangeRequested) as proposed:
        services.flag_rule_create(actor=Actor(label="ana", user_id=ana.pk, via="admin"), flag=flag,
                                  environment=production, kind="rollout", variant="on", coverage=0.25,
                                  condition={"country": "DE"})
    pk = proposed.value.change_request.pk
    page = browser_page

    sign_in(page, live_server.url, "ana", f"/admin/base/changerequest/{pk}/change/")
    assert page.locator("button[value=approve]").count() == 0
    assert "another user with the right to approve" in page.content()

    page.context.clear_cookies()
    sign_in(page, live_server.url, "pia", "/admin/base/changerequest/?status__exact=open")
    page.get_by_text("Add a rule to flag checkout in production").first.wait_for()
    page.goto(f"{live_server.url}/admin/base/changerequest/{pk}/change/")
    words = page.locator(".diff-words").first.inner_text()
    assert "25%" in words and "country" in words, words
    page.fill("textarea[name=review_comment]", "Good to go")
    page.click("button[value=approve]")
    page.get_by_text(f"Change request #{pk} applied.").wait_for()
    assert page.locator(".change-request-status").inner_text().startswith("Applied")

    request = ChangeRequest.objects.get(pk=pk)
    assert (request.status, request.reviewer_label, request.review_comment) == ("applied", "pia", "Good to go")
    assert Rule.objects.filter(state__flag=flag, coverage=0.25).count() == 1
