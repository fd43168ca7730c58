"""The management API asks the permission service: a token never does more than its owner may
at the moment of the request, and every endpoint says which action each of its methods is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.views import APIView

from base.authentication import HasManagementScope, required_action
from base.models import ApiToken
from flags.models import Flag
from guarded.models import GuardedRollout
from tests.integration.base.roles import World, build_world, fingerprint, read_only_user, token_client

pytestmark = pytest.mark.django_db

API_ROOT = "api/v1/"
SDK_EDGE = ("api/v1/evaluate", "api/v1/events")
WRITES = ("post", "put", "patch", "delete")

# Bodies that the endpoint would accept, so that only the role stands between them and a change;
# a value written as a URL parameter names the world's object as the URLs do.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("environment-list", "post"): {"key": "attacker-env"},
    ("flag-list", "post"): {"key": "attacker-flag"},
    ("flag-detail", "patch"): {"owner": "attacker"},
    ("flag-state", "patch"): {"enabled": False},
    ("flag-rules", "post"): {"kind": "force", "variant": "on"},
    ("flag-rule-detail", "patch"): {"coverage": 1.0},
    ("segment-list", "post"): {"key": "attacker-segment", "condition": {"a": 1}},
    ("segment-detail", "patch"): {"name": "attacker"},
    ("attribute-list", "post"): {"name": "attacker-attribute"},
    ("attribute-detail", "patch"): {"description": "attacker"},
    ("metric-list", "post"): {"key": "attacker-metric", "kind": "count", "event_name": "x"},
    ("metric-detail", "patch"): {"name": "attacker"},
    ("experiment-detail", "patch"): {"name": "attacker"},
    ("experiment-stop", "post"): {"decision": "rollback"},
    ("experiment-ramp", "post"): {"coverage": 0.5},
    ("guarded-rollout-list", "post"): {"rule_id": "<str:uid>", "steps": [{"percent": 100}], "guardrails": []},
}


def _patterns(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, route)
        else:
            yield route, entry


def management_endpoints() -> list[tuple[str, str, type[APIView]]]:
    """(route, URL name, view class) of every management API endpoint."""
    found = []
    for route, pattern in _patterns(get_resolver()):
        if not route.startswith(API_ROOT) or route.startswith(SDK_EDGE):
            continue
        view_class = getattr(pattern.callback, "view_class", None)
        assert view_class is not None and issubclass(view_class, APIView), route
        found.append((route, str(pattern.name), view_class))
    return found


def _values(world: World, kind: str = "", route: str = "") -> dict[str, str]:
    """What each URL parameter stands for in the world (bodies name the world's objects the same way)."""
    keys = {"flags": world.flag.key, "environments": world.environment.key, "segments": world.segment.key,
            "metrics": "signup", "data-sources": "walk-source", "holdouts": "walk-holdout",
            "experiments": world.draft.key if route.endswith("/start") else world.running.key}
    return {"<str:key>": keys.get(kind, ""), "<str:env>": world.environment.key, "<str:uid>": world.rule.uid,
            "<str:name>": "plan", "<int:pk>": str(world.change_request.pk),
            "<int:rollout_id>": str(GuardedRollout.objects.values_list("pk", flat=True)[0])}


def _url(route: str, world: World) -> str:
    for placeholder, value in _values(world, route.removeprefix(API_ROOT).split("/")[0], route).items():
        route = route.replace(placeholder, value)
    assert "<" not in route, route
    return "/" + route


def _body(name: str, method: str, world: World) -> dict[str, Any]:
    values = _values(world)
    return {field: values.get(value, value) if isinstance(value, str) else value
            for field, value in BODIES.get((name, method), {}).items()}


def write_calls(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    calls = []
    for route, name, view_class in management_endpoints():
        for method in WRITES:
            if hasattr(view_class, method):
                calls.append((method, _url(route, world), _body(name, method, world)))
    return calls


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


def _assert_refused(response: Any, call: Any) -> None:
    assert response.status_code == 403, (call, response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "message", "details"}, (call, body)
    assert body["code"] == "permission_denied" and body["message"], (call, body)


def test_every_management_endpoint__declares_an_action_for_each_method() -> None:
    endpoints = management_endpoints()
    assert len(endpoints) >= 20
    for route, _, view_class in endpoints:
        assert HasManagementScope in [type(p) for p in view_class().get_permissions()], route
        for method in ("get", *WRITES):
            if hasattr(view_class, method):
                assert required_action(view_class, method) is not None, (route, method)


@pytest.mark.parametrize("owner", ["read_only", "not_staff"])
def test_every_write_url__write_token_of_an_owner_without_the_right__403_and_nothing_changes(
    world: World, owner: str
) -> None:
    if owner == "read_only":
        user = read_only_user()
    else:
        user = User.objects.create_user("customer", password="pw-customer-123")
        user.user_permissions.set(Permission.objects.all())  # model permissions mean nothing without staff
    client = token_client(user, ApiToken.Scope.WRITE)
    calls = write_calls(world)
    assert len(calls) >= 24
    for method, url, body in calls:
        before = fingerprint()
        response = getattr(client, method)(url, body, format="json")
        _assert_refused(response, (method, url))
        assert fingerprint() == before, (method, url)


def test_every_read_url__read_only_token_may_read__non_staff_token_may_not(world: World) -> None:
    reader = token_client(read_only_user(), ApiToken.Scope.WRITE)
    outsider = token_client(User.objects.create_user("customer", password="pw-customer-123"), ApiToken.Scope.READ)
    reads = [_url(route, world) for route, _, view_class in management_endpoints() if hasattr(view_class, "get")]
    assert len(reads) >= 10
    for url in reads:
        assert reader.get(url).status_code == 200, url
        _assert_refused(outsider.get(url), url)


def test_write_token__owner_loses_the_right__refused_at_the_next_request(world: World) -> None:
    owner = User.objects.create_user("pm", password="pw-pm-12345", is_staff=True)
    owner.user_permissions.set(Permission.objects.filter(codename__in=["view_flag", "change_flag"]))
    client = token_client(owner, ApiToken.Scope.WRITE)
    url = f"/api/v1/flags/{world.flag.key}"
    assert client.patch(url, {"owner": "growth"}, format="json").status_code == 200

    owner.user_permissions.remove(Permission.objects.get(codename="change_flag"))
    refused = client.patch(url, {"owner": "someone else"}, format="json")
    _assert_refused(refused, url)
    assert refused.json()["details"] == {"action": "flag.change"}
    assert Flag.objects.get(pk=world.flag.pk).owner == "growth"
    assert client.get(url).status_code == 200  # still allowed to read

    owner.is_staff = False
    owner.save()
    _assert_refused(client.get(url), url)

    owner.is_staff, owner.is_active = True, False
    owner.save()
    assert client.get(url).status_code == 401
    assert client.patch(url, {"owner": "someone else"}, format="json").status_code == 401
    assert Flag.objects.get(pk=world.flag.pk).owner == "growth"


def test_read_token__owner_may_change__still_refused_by_the_scope(world: World, admin_user: User) -> None:
    client = token_client(admin_user, ApiToken.Scope.READ)
    response = client.patch(f"/api/v1/flags/{world.flag.key}", {"owner": "x"}, format="json")
    _assert_refused(response, "read scope")
    assert "read scope" in response.json()["message"]


def test_staff_session__read_only_role__reads_but_cannot_write(world: World) -> None:
    client = APIClient()
    client.force_login(read_only_user())
    url = f"/api/v1/flags/{world.flag.key}/environments/{world.environment.key}"
    assert client.get(f"/api/v1/flags/{world.flag.key}").status_code == 200
    _assert_refused(client.patch(url, {"enabled": False}, format="json"), url)


def test_api_schema__token_of_a_non_staff_owner__refused(world: World, admin_user: User) -> None:
    outsider = token_client(User.objects.create_user("customer", password="pw-customer-123"))
    assert outsider.get("/api/schema/").status_code == 403
    assert token_client(admin_user, ApiToken.Scope.READ).get("/api/schema/").status_code == 200


def test_required_action__head_and_options_ask_what_get_does() -> None:
    class View:
        required_actions = {"GET": "flag.view", "POST": "flag.create"}

    assert required_action(View, "HEAD") == required_action(View, "OPTIONS") == "flag.view"
    assert required_action(View, "DELETE") is None
