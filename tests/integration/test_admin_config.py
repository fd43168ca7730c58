"""Segments, environments, tokens, layers, holdouts and the audit log in the admin, and what
view-only staff can do there."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from audit.types import Actor
from base import tokens
from base.keys import token_digest
from base.models import ApiToken, Environment
from config.errors import ValidationFailed
from flags import services
from flags.models import Flag, FlagState, Segment
from tests.integration.conftest_admin import errors_of, field_errors, read_form, snapshot, text_of
from traffic import services as traffic_services
from traffic.models import Holdout, Layer

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def _segment_data(key: str = "beta", **values: Any) -> dict[str, Any]:
    return {"key": key, "name": "", "description": "", "kind": "condition", "condition": '{"beta": true}',
            "attribute": "id", "ids": "", **values}


# Segments ---------------------------------------------------------------------------------


def test_segment_add__condition__created_through_service(admin_client: Client, environments: Any) -> None:
    response = admin_client.post(reverse("admin:flags_segment_add"), _segment_data())

    assert response.status_code == 302, errors_of(response)
    assert Segment.objects.get(key="beta").condition == {"beta": True}
    assert AuditEntry.objects.filter(action="segment.create", via="admin", actor_label="boss").count() == 1


def test_segment_add__id_list__ids_split_on_lines_and_commas(admin_client: Client, environments: Any) -> None:
    data = _segment_data("vips", kind="ids", condition="", attribute="user_id", ids="u1\nu2, u3")

    response = admin_client.post(reverse("admin:flags_segment_add"), data)

    assert response.status_code == 302, errors_of(response)
    segment = Segment.objects.get(key="vips")
    assert (segment.kind, segment.attribute, segment.ids) == ("ids", "user_id", ["u1", "u2", "u3"])


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"condition": '{"beta": tru}'}, "condition", "This is not valid JSON"),
        ({"condition": '{"age": {"$older": 3}}'}, "condition", "unknown operator '$older'"),
        ({"condition": ""}, "condition", "A condition segment needs a condition."),
        ({"key": "no spaces"}, "key", "letters, digits"),
    ],
    ids=["bad-json", "unknown-operator", "empty-condition", "bad-key"],
)
def test_segment_add__invalid__form_error_and_nothing_written(
    admin_client: Client, environments: Any, values: dict[str, Any], field: str, message: str
) -> None:
    before = snapshot()

    response = admin_client.post(reverse("admin:flags_segment_add"), _segment_data(**values))

    assert response.status_code == 200
    assert any(message in e for e in field_errors(response, field)), errors_of(response)
    assert snapshot() == before


def test_segment_change__description__updated_and_audited(admin_client: Client, environments: Any) -> None:
    segment = services.segment_create(actor=SYSTEM, key="beta", condition={"beta": True})
    url = reverse("admin:flags_segment_change", args=[segment.pk])
    data = read_form(admin_client, url, "segment_form")
    data["description"] = "Opted into the beta"

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert Segment.objects.get(pk=segment.pk).description == "Opted into the beta"
    entry = AuditEntry.objects.get(action="segment.update")
    assert entry.diff == {"description": {"before": "", "after": "Opted into the beta"}}


def test_segment_delete__used_by_a_rule__refused_with_message(admin_client: Client, environments: Any) -> None:
    segment = services.segment_create(actor=SYSTEM, key="beta", condition={"beta": True})
    flag = services.flag_create(actor=SYSTEM, key="new-checkout")
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=environments["production"], kind="force",
                              variant="on", segments=["beta"])
    before = snapshot()

    response = admin_client.post(reverse("admin:flags_segment_delete", args=[segment.pk]), {"post": "yes"},
                                 follow=True)

    assert "Rules use this segment. new-checkout@production" in text_of(response)
    assert snapshot() == before


def test_segment_delete__unused__deleted_through_service(admin_client: Client, environments: Any) -> None:
    segment = services.segment_create(actor=SYSTEM, key="beta", condition={"beta": True})

    response = admin_client.post(reverse("admin:flags_segment_delete", args=[segment.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Segment.objects.exists()
    assert AuditEntry.objects.filter(action="segment.delete", via="admin").count() == 1


# Environments -----------------------------------------------------------------------------


def test_environment_add__keys_generated_and_flags_get_a_state(admin_client: Client, environments: Any) -> None:
    services.flag_create(actor=SYSTEM, key="new-checkout")

    response = admin_client.post(reverse("admin:base_environment_add"), {"key": "qa", "name": "QA"})

    assert response.status_code == 302, errors_of(response)
    env = Environment.objects.get(key="qa")
    assert env.client_key.startswith("sdk-client-") and env.server_key.startswith("sdk-server-")
    assert FlagState.objects.filter(environment=env, flag__key="new-checkout").exists()
    assert AuditEntry.objects.filter(action="environment.create", via="admin").count() == 1
    page = admin_client.get(reverse("admin:base_environment_change", args=[env.pk]))
    assert env.client_key in page.content.decode() and env.server_key in page.content.decode()


@pytest.mark.parametrize(("key", "message"), [("production", "already exists"), ("bad key", "letters, digits")])
def test_environment_add__invalid_key__form_error_and_nothing_written(
    admin_client: Client, environments: Any, key: str, message: str
) -> None:
    before = snapshot()

    response = admin_client.post(reverse("admin:base_environment_add"), {"key": key, "name": ""})

    assert response.status_code == 200
    assert any(message in e for e in errors_of(response)), errors_of(response)
    assert snapshot() == before


def test_environment_rotate_keys_action__confirmed__new_keys_and_audit(admin_client: Client, environments: Any) -> None:
    env = environments["staging"]
    url = reverse("admin:base_environment_changelist")
    data = {"action": "rotate_keys", "_selected_action": [str(env.pk)]}

    asked = admin_client.post(url, data)
    assert asked.status_code == 200 and "Rotate the SDK keys" in text_of(asked)
    assert Environment.objects.get(pk=env.pk).client_key == env.client_key

    admin_client.post(url, {**data, "post": "yes"})

    rotated = Environment.objects.get(pk=env.pk)
    assert rotated.client_key != env.client_key and rotated.server_key != env.server_key
    assert AuditEntry.objects.filter(action="environment.rotate_keys", via="admin").count() == 1


# Tokens -----------------------------------------------------------------------------------


def test_token_add__raw_token_shown_once_and_only_its_hash_stored(
    admin_client: Client, admin_user: User, environments: Any
) -> None:
    response = admin_client.post(reverse("admin:base_apitoken_add"),
                                 {"name": "ci", "user": str(admin_user.pk), "scope": "write"}, follow=True)

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "Copy this token now" in str(m)]
    assert len(shown) == 1
    raw = shown[0].rsplit(" ", 1)[-1]
    token = ApiToken.objects.get(name="ci")
    assert token.token_hash == token_digest(raw) and token.scope == "write"
    assert raw not in admin_client.get(reverse("admin:base_apitoken_change", args=[token.pk])).content.decode()
    assert AuditEntry.objects.filter(action="token.create", via="admin").count() == 1


def test_token_revoke_action__confirmed__token_revoked(
    admin_client: Client, admin_user: User, environments: Any
) -> None:
    token, _ = tokens.api_token_create(actor=SYSTEM, user=admin_user, name="old")
    data = {"action": "revoke_tokens", "_selected_action": [str(token.pk)], "post": "yes"}

    admin_client.post(reverse("admin:base_apitoken_changelist"), data)

    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert AuditEntry.objects.filter(action="token.revoke", via="admin").count() == 1


# Layers and holdouts ----------------------------------------------------------------------


def test_layer_add_and_change__through_traffic_services(admin_client: Client, environments: Any) -> None:
    response = admin_client.post(reverse("admin:traffic_layer_add"),
                                 {"key": "checkout", "name": "Checkout", "description": ""})
    assert response.status_code == 302, errors_of(response)
    layer = Layer.objects.get(key="checkout")
    url = reverse("admin:traffic_layer_change", args=[layer.pk])
    data = read_form(admin_client, url, "layer_form")
    data["description"] = "Checkout experiments"

    response = admin_client.post(url, data)

    assert response.status_code == 302, errors_of(response)
    assert Layer.objects.get(pk=layer.pk).description == "Checkout experiments"
    assert list(AuditEntry.objects.filter(object_type="layer").values_list("action", flat=True).order_by("id")) == [
        "layer.create", "layer.update"]


def test_holdout_add__share_in_percent__stored_as_fraction(admin_client: Client, environments: Any) -> None:
    data = {"key": "global", "name": "", "description": "", "share_percent": "5", "hash_attribute": "id", "seed": ""}

    response = admin_client.post(reverse("admin:traffic_holdout_add"), data)

    assert response.status_code == 302, errors_of(response)
    holdout = Holdout.objects.get(key="global")
    assert (holdout.share, holdout.seed, holdout.name) == (0.05, "global", "global")
    assert AuditEntry.objects.filter(action="holdout.create", via="admin").count() == 1


def test_holdout_add__share_above_half__form_error_and_nothing_written(
    admin_client: Client, environments: Any
) -> None:
    data = {"key": "global", "name": "", "description": "", "share_percent": "60", "hash_attribute": "id", "seed": ""}

    response = admin_client.post(reverse("admin:traffic_holdout_add"), data)

    assert response.status_code == 200
    assert field_errors(response, "share_percent") == ["Give a percentage between 0 and 50."]
    assert not Holdout.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"share": 0.7}, "share"), ({"share": True}, "share"), ({"share": 0.1, "hash_attribute": ""}, "hash_attribute"),
     ({"share": 0.1, "key": "x" * 65}, "key")],
)
def test_holdout_create__invalid__validation_failed_and_nothing_written(
    environments: Any, kwargs: dict[str, Any], field: str
) -> None:
    params: dict[str, Any] = {"key": "global", **kwargs}
    with pytest.raises(ValidationFailed) as raised:
        traffic_services.holdout_create(actor=SYSTEM, **params)

    assert field in raised.value.details
    assert not Holdout.objects.exists() and not AuditEntry.objects.filter(object_type="holdout").exists()


def test_holdout_update__share__bumps_every_environment_and_audits_the_diff(environments: Any) -> None:
    holdout = traffic_services.holdout_create(actor=SYSTEM, key="global", share=0.05)
    versions = dict(Environment.objects.values_list("key", "config_version"))

    traffic_services.holdout_update(actor=SYSTEM, holdout=holdout, share=0.1)

    assert all(v == versions[k] + 1 for k, v in Environment.objects.values_list("key", "config_version"))
    entry = AuditEntry.objects.get(action="holdout.update")
    assert entry.diff == {"share": {"before": 0.05, "after": 0.1}}


# Audit log --------------------------------------------------------------------------------


def test_audit_log__list_filters_and_detail_diff__read_only(admin_client: Client, environments: Any) -> None:
    flag = services.flag_create(actor=SYSTEM, key="new-checkout")
    services.flag_update(actor=SYSTEM, flag=flag, owner="growth")
    entry = AuditEntry.objects.get(action="flag.update")

    listing = admin_client.get(reverse("admin:audit_auditentry_changelist"), {"object_type__exact": "flag"})
    detail = admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))

    assert listing.status_code == 200 and "flag.update" in text_of(listing)
    assert detail.status_code == 200
    assert '<pre class="diff-before' in detail.content.decode() and '"growth"' in text_of(detail)
    assert admin_client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert admin_client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk]), {"post": "yes"}
                             ).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_audit_log__environment_entry__links_to_the_environment_page(
    admin_client: Client, environments: Any
) -> None:
    entry = AuditEntry.objects.get(action="environment.create", object_key="staging")

    detail = admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))

    assert detail.status_code == 200
    url = reverse("admin:base_environment_change", args=[environments["staging"].pk])
    assert f'href="{url}"' in detail.content.decode()


# View-only staff --------------------------------------------------------------------------


@pytest.fixture
def viewer_client(db: Any) -> Client:
    user = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    codenames = ["view_flag", "view_variant", "view_flagstate", "view_rule", "view_segment", "view_environment"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_view_only_staff__can_open_pages__but_not_change_anything(
    viewer_client: Client, admin_client: Client, environments: Any
) -> None:
    flag = services.flag_create(actor=SYSTEM, key="new-checkout")
    state = FlagState.objects.get(flag=flag, environment__key="production")
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=state.environment, kind="rollout", variant="on",
                              coverage=0.25)
    flag_url = reverse("admin:flags_flag_change", args=[flag.pk])
    state_url = reverse("admin:flags_flagstate_change", args=[state.pk])
    full_form = read_form(admin_client, flag_url, "flag_form")
    before = snapshot()

    pages = [reverse("admin:flags_flag_changelist"), flag_url, state_url,
             reverse("admin:flags_flag_history", args=[flag.pk])]
    for url in pages:
        assert viewer_client.get(url).status_code == 200, url
    assert "25 %" in text_of(viewer_client.get(state_url))
    assert viewer_client.get(reverse("admin:flags_flag_add")).status_code == 403
    assert viewer_client.post(flag_url, {**full_form, "owner": "someone"}).status_code == 403
    assert viewer_client.post(reverse("admin:flags_flag_changelist"),
                              {"action": "archive_flags", "_selected_action": [str(flag.pk)], "post": "yes"}
                              ).status_code in (200, 302, 403)
    assert snapshot() == before
    assert Flag.objects.get(pk=flag.pk).archived_at is None


def test_token_add__by_staff_without_superuser__token_is_their_own_and_others_stay_hidden(
    admin_user: User, environments: Any
) -> None:
    staff = User.objects.create_user("pm", password="pw-pm-12345", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__in=["add_apitoken", "view_apitoken"]))
    tokens.api_token_create(actor=SYSTEM, user=admin_user, name="boss token")
    client = Client()
    client.force_login(staff)

    response = client.post(reverse("admin:base_apitoken_add"), {"name": "mine", "user": str(admin_user.pk),
                                                                  "scope": "read"})

    assert response.status_code == 302, errors_of(response)
    assert ApiToken.objects.get(name="mine").user == staff
    listing = text_of(client.get(reverse("admin:base_apitoken_changelist")))
    assert "mine" in listing and "boss token" not in listing


def test_admin_index__site_menu__leads_to_the_result_and_flag_pages(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    for link in ("/experiments/", "/experiments/new/basics/", "/flags/", "/api/docs/"):
        assert f'href="{link}"' in html, link
