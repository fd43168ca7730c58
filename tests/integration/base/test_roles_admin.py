"""The admin asks the permission service: the read-only role can open every page and every
audit history, and no action of any admin changes anything for it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audit.models import AuditEntry
from base import tokens
from base.admin import AuditHistoryMixin
from base.admin_base import ModelAdmin
from base.models import ApiToken
from experiments.models import Experiment
from tests.integration.base.roles import ACTOR, World, build_world, fingerprint, read_only_user

pytestmark = pytest.mark.django_db

# Users and groups keep Django's own admin, its permission checks and its one action (delete_selected).
DJANGO_OWN = ("auth",)


def _registry() -> list[tuple[Any, Any]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _ours() -> list[tuple[Any, Any]]:
    return [(model, model_admin) for model, model_admin in _registry() if model._meta.app_label not in DJANGO_OWN]


def _url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _changelist_actions(model_admin: Any) -> list[str]:
    """Every action the admin registers: the site's own (delete_selected) and its custom ones."""
    return sorted({name for name, _ in admin.site.actions} | set(model_admin.actions or ()))


def _button_actions(model_admin: Any) -> dict[str, list[str]]:
    """unfold's buttons, by where they sit (a dropdown lists its buttons under "items")."""
    found: dict[str, list[str]] = {}
    for place in ("actions_detail", "actions_row", "actions_list", "actions_submit_line"):
        found[place] = []
        for item in getattr(model_admin, place, ()) or ():
            found[place].extend(item["items"] if isinstance(item, dict) else [item])
    return found


def _offered(response: Any) -> set[str]:
    form = response.context.get("action_form") if response.context is not None else None
    return {str(value) for value, _ in form.fields["action"].choices if value} if form is not None else set()


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


@pytest.fixture
def viewer(db: Any) -> User:
    user = read_only_user()
    tokens.api_token_create(actor=ACTOR, user=user, name="the viewer's own", scope=ApiToken.Scope.WRITE)
    return user


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


def test_every_admin_of_ours__declares_roles() -> None:
    for model, model_admin in _ours():
        assert isinstance(model_admin, ModelAdmin), model
        assert model_admin.roles is not None, model


def test_every_admin_action__read_only_role__not_offered_refused_and_nothing_changes(
    world: World, viewer_client: Client
) -> None:
    walked = 0
    for model, model_admin in _registry():
        changelist = _url(model, "changelist")
        pks = [str(pk) for pk in model._default_manager.values_list("pk", flat=True)]
        assert pks, f"the world has no {model._meta.label} to select"
        listing = viewer_client.get(changelist)
        offered = _offered(listing) if listing.status_code == 200 else set()
        for name in _changelist_actions(model_admin):
            before = fingerprint()
            response = viewer_client.post(changelist, {"action": name, "_selected_action": pks, "index": "0",
                                                       "post": "yes", "select_across": "0"})
            assert fingerprint() == before, (model._meta.label, name)
            assert response.status_code == 403 or (name not in offered and response.status_code in (200, 302)), (
                model._meta.label, name, response.status_code, offered)
            walked += 1
        for place, names in _button_actions(model_admin).items():
            assert place != "actions_submit_line" or not names, "walk submit-line buttons too"
            for name in names:
                args = [] if place == "actions_list" else [pks[0]]
                url = _url(model, name, *args)
                for method in ("get", "post"):
                    before = fingerprint()
                    response = getattr(viewer_client, method)(url)
                    assert response.status_code == 403, (model._meta.label, name, method, response.status_code)
                    assert fingerprint() == before, (model._meta.label, name, method)
                if args:
                    page = viewer_client.get(_url(model, "change", pks[0]))
                    assert url not in page.content.decode(), (model._meta.label, name)
                walked += 1
    assert walked >= 15  # every custom action of every app, plus Django's delete_selected per admin


def test_every_admin_action__full_user__offered(world: World, admin_client: Client) -> None:
    """The walk above means something: the same actions are there for a user allowed them."""
    for model, model_admin in _ours():
        offered = _offered(admin_client.get(_url(model, "changelist")))
        assert set(model_admin.actions or ()) <= offered, model._meta.label
    running = Experiment.objects.get(key="walk-running")
    page = admin_client.get(_url(Experiment, "change", running.pk)).content.decode()
    assert _url(Experiment, "refresh_detail", running.pk) in page


def test_start_experiments_action__read_only_role__draft_stays_draft_and_not_audited(
    world: World, viewer_client: Client
) -> None:
    audit_before = AuditEntry.objects.count()
    response = viewer_client.post(_url(Experiment, "changelist"), {
        "action": "start_experiments", "_selected_action": [str(world.draft.pk)], "index": "0"})
    assert response.status_code in (200, 302)
    world.draft.refresh_from_db()
    assert world.draft.status == Experiment.Status.DRAFT
    assert AuditEntry.objects.count() == audit_before
    assert not AuditEntry.objects.filter(action="experiment.start", actor_label="viewer").exists()


def test_every_admin_page_and_history__read_only_role__viewable_without_change_controls(
    world: World, viewer: User, viewer_client: Client
) -> None:
    for model, model_admin in _ours():
        # Staff see their own tokens only.
        objects = ApiToken.objects.filter(user=viewer) if model is ApiToken else model._default_manager.all()
        obj = objects.order_by("pk").first()
        assert obj is not None, model._meta.label
        assert viewer_client.get(_url(model, "changelist")).status_code == 200, model._meta.label
        change = viewer_client.get(_url(model, "change", obj.pk))
        assert change.status_code == 200, model._meta.label
        assert 'name="_save"' not in change.content.decode(), model._meta.label
        if isinstance(model_admin, AuditHistoryMixin):
            assert viewer_client.get(_url(model, "history", obj.pk)).status_code == 200, model._meta.label
        try:
            add_url = _url(model, "add")
        except NoReverseMatch:
            continue
        assert viewer_client.get(add_url).status_code == 403, model._meta.label


def test_admin__staff_without_permissions__sees_no_model(world: World) -> None:
    client = Client()
    client.force_login(User.objects.create_user("nobody", password="pw-nobody-123", is_staff=True))
    for model, _ in _ours():
        assert client.get(_url(model, "changelist")).status_code == 403, model._meta.label


def test_sign_in_attempts__clean_up_action__full_user_removes_expired_ones(admin_client: Client) -> None:
    fields = {"user_agent": "walker", "ip_address": "10.0.0.1", "http_accept": "*/*", "path_info": "/admin/login/",
              "get_data": "", "post_data": "", "failures_since_start": 1}
    old = AccessAttempt.objects.create(username="long-ago", **fields)
    AccessAttempt.objects.filter(pk=old.pk).update(attempt_time=timezone.now() - timedelta(days=2))
    fresh = AccessAttempt.objects.create(username="just-now", **fields)

    response = admin_client.post(_url(AccessAttempt, "changelist"), {
        "action": "cleanup_expired_attempts", "_selected_action": [str(fresh.pk)], "index": "0"})

    assert response.status_code == 302
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["just-now"]
