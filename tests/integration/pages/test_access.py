"""Who sees the pages and who may change things through them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry
from experiments.models import Experiment
from flags import ramps
from flags.models import FlagState
from pages.experiments import urls as experiment_urls
from pages.flags import urls as flag_urls
from tests.integration.base.roles import fingerprint
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db

READ_PAGES = (
    "/experiments/",
    "/experiments/{key}/",
    "/experiments/{key}/export.csv",
    "/experiments/{key}/export.json",
    "/flags/",
    "/flags/?stale=1",
    "/flags/{flag}/",
)


@pytest.mark.parametrize("path", [*READ_PAGES, "/experiments/new/basics/", "/experiments/{key}/stop"])
def test_pages__anonymous__redirected_to_admin_login(client: Client, winner: Experiment, path: str) -> None:
    url = path.format(key=winner.key, flag=winner.flag.key)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "next=" in response["Location"]


def test_pages__logged_in_but_not_staff__redirected_to_admin_login(client: Client, winner: Experiment) -> None:
    user = User.objects.create_user("customer", "c@example.com", "pw-12345-x")
    client.force_login(user)
    response = client.get(f"/experiments/{winner.key}/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", READ_PAGES)
def test_pages__read_only_staff__can_view(client_for: Any, viewer: User, winner: Experiment, path: str) -> None:
    response = client_for(viewer).get(path.format(key=winner.key, flag=winner.flag.key))
    assert response.status_code == 200


def test_pages__read_only_staff__no_change_buttons(client_for: Any, viewer: User, winner: Experiment) -> None:
    client = client_for(viewer)
    html = client.get(f"/experiments/{winner.key}/").content.decode()
    assert 'id="stop-experiment"' not in html and 'id="refresh"' not in html
    assert "read-only" in html
    assert 'id="new-experiment"' not in client.get("/experiments/").content.decode()
    flag_html = client.get(f"/flags/{winner.flag.key}/").content.decode()
    assert "kill-switch" not in flag_html and 'id="new-ramp"' not in flag_html


def test_pages__read_only_staff__every_change_is_403_and_nothing_changes(
    client_for: Any, viewer: User, winner: Experiment
) -> None:
    client = client_for(viewer)
    draft = factories.create_experiment(factories.flat_plan("draft-idea"), start=False)
    audit_before = AuditEntry.objects.count()
    env = winner.environment.key
    attempts = [
        ("post", f"/experiments/{winner.key}/stop", {"decision": "rollback"}),
        ("get", f"/experiments/{winner.key}/stop", {}),
        ("post", f"/experiments/{winner.key}/refresh", {}),
        ("get", f"/experiments/{winner.key}/ramp", {}),
        ("post", f"/experiments/{winner.key}/ramp", {"mode": "now", "confirm": "yes", "now-coverage": "50",
                                                      "now-weights": "50/50"}),
        ("post", f"/experiments/{draft.key}/start", {}),
        ("get", "/experiments/new/basics/", {}),
        ("post", "/experiments/new/review/", {"action": "start"}),
        ("get", f"/flags/{winner.flag.key}/environments/{env}/switch", {}),
        ("post", f"/flags/{winner.flag.key}/environments/{env}/switch", {"enabled": "0"}),
        ("get", f"/flags/{winner.flag.key}/ramps/new", {}),
        ("post", f"/flags/{winner.flag.key}/ramps/new", {"environment": env, "variant": "treatment"}),
    ]
    for method, url, data in attempts:
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, (method, url, response.status_code)
    assert AuditEntry.objects.count() == audit_before
    winner.refresh_from_db()
    assert winner.status == Experiment.Status.RUNNING
    assert FlagState.objects.get(flag=winner.flag, environment=winner.environment).enabled


def test_pages__change_permission__buttons_shown(client_for: Any, analyst: User, winner: Experiment) -> None:
    html = client_for(analyst).get(f"/experiments/{winner.key}/").content.decode()
    assert 'id="stop-experiment"' in html and 'id="refresh"' in html
    assert "read-only" not in html


def test_pages__unsafe_method_without_csrf__rejected(analyst: User, winner: Experiment) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(analyst)
    response = client.post(f"/experiments/{winner.key}/stop", {"decision": "rollback"})
    assert response.status_code == 403
    winner.refresh_from_db()
    assert winner.status == Experiment.Status.RUNNING


READ_ONLY_URL_NAMES = {"experiment-pages:list", "experiment-pages:detail", "experiment-pages:export-json",
                       "experiment-pages:export-csv", "experiment-pages:panel", "flag-pages:list", "flag-pages:detail"}


def test_every_page_url__post_as_read_only_staff__writes_are_403_and_nothing_changes(
    client_for: Any, viewer: User, winner: Experiment
) -> None:
    draft = factories.create_experiment(factories.flat_plan("draft-idea"), start=False)
    env = winner.environment
    steps = ramps.ramp_plan(start=timezone.now() - timedelta(hours=30), interval=timedelta(days=1))
    ramp = ramps.ramp_create(actor=factories.ACTOR, flag=winner.flag, environment=env, variant="treatment",
                             steps=steps)
    client = client_for(viewer)
    walked = set()
    for module in (experiment_urls, flag_urls):
        for pattern in module.urlpatterns:
            name = f"{module.app_name}:{pattern.name}"
            key = winner.flag.key if module is flag_urls else draft.key if pattern.name == "start" else winner.key
            values = {"<str:key>": key, "<str:env>": env.key, "<str:ramp_id>": ramp.id, "<str:step>": "review",
                      "<str:name>": "slices"}
            url = "/" + module.app_name.removesuffix("-pages") + "s/" + str(pattern.pattern)
            for placeholder, value in values.items():
                url = url.replace(placeholder, value)
            before = fingerprint()
            response = client.post(url, {"action": "start", "decision": "rollback", "enabled": "0", "mode": "remove",
                                         "environment": env.key, "variant": "treatment"})
            assert fingerprint() == before, url
            if name in READ_ONLY_URL_NAMES:
                assert response.status_code in (200, 405), (url, response.status_code)
            else:
                assert response.status_code == 403, (url, response.status_code)
            walked.add(name)
    assert len(walked) == 15
