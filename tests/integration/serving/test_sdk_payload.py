"""GET /api/features/{clientKey}: GrowthBook's payload shape, caching headers and schedules."""

from __future__ import annotations

import types
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.types import Actor
from flags import services
from tests.integration.serving.conftest import BETA_IDS, Catalog

pytestmark = pytest.mark.django_db


def _url(key: str) -> str:
    return f"/api/features/{key}"


def test_sdk_payload__client_key__growthbook_shape(client: Client, catalog: Catalog) -> None:
    response = client.get(_url(catalog.client_key))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    assert set(payload) == {"features", "savedGroups", "dateUpdated"}
    assert set(payload["features"]) == set(catalog.flags)
    assert payload["savedGroups"] == {"beta": BETA_IDS, "big-companies": ["acme", "globex"]}
    assert payload["dateUpdated"].endswith("Z")

    pricing = payload["features"]["pricing"]
    assert pricing["defaultValue"] == {"layout": "classic", "cta": "Start"}
    forced, experiment = pricing["rules"]
    assert forced["condition"] == {"$and": [{"plan": "pro"}, {"country": {"$in": ["DE", "FR", "NL"]}}]}
    assert forced["force"]["billing"] == "annual"
    assert experiment["key"] == "pricing-exp"
    assert experiment["variations"][1] == {"layout": "compact", "cta": "Try"}
    assert experiment["weights"] == [0.5, 0.25, 0.25]
    assert experiment["coverage"] == 0.8
    assert experiment["hashVersion"] == 2
    assert experiment["seed"] == "pricing-exp"
    assert [m["key"] for m in experiment["meta"]] == ["classic", "compact", "annual"]

    search = payload["features"]["search-ranking"]["rules"][0]
    assert search["namespace"] == ["search-layer", 0.0, 0.6]
    assert search["hashAttribute"] == "company"
    assert payload["features"]["search-ui"]["rules"][0]["phase"] == "2"

    checkout = payload["features"]["new-checkout"]["rules"]
    assert checkout[0]["condition"] == {"id": {"$inGroup": "beta"}}
    assert checkout[1]["coverage"] == 0.3 and checkout[1]["hashVersion"] == 2 and checkout[1]["force"] is True

    upsell = payload["features"]["upsell"]["rules"][0]
    assert upsell == {"parentConditions": [{"id": "new-checkout", "condition": {"value": True}, "gate": True}]}
    banner = payload["features"]["banner"]["rules"][0]
    assert banner["parentConditions"] == [{"id": "search-ranking", "condition": {"value": "semantic"}}]

    assert payload["features"]["disabled-flag"] == {
        "defaultValue": False, "valueType": "boolean", "defaultVariant": "off", "enabled": False,
    }
    assert "rules" not in payload["features"]["skipped-rule"]


def test_sdk_payload__rules_out_of_schedule__left_out(client: Client, catalog: Catalog) -> None:
    features = client.get(_url(catalog.client_key)).json()["features"]
    assert len(features["scheduled"]["rules"]) == 1
    assert features["scheduled"]["rules"][0]["force"] is True
    assert "startsAt" not in features["scheduled"]["rules"][0]
    assert "rules" not in features["later"]


def test_sdk_payload__rule_starts_later__served_once_its_time_comes(
    client: Client, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = timezone.now() + timedelta(hours=1)
    services.flag_rule_create(actor=Actor.system(), flag=catalog.flags["kill-switch"], environment=catalog.environment,
                              kind="force", variant="off", starts_at=start)
    before = client.get(_url(catalog.client_key))
    assert "rules" not in before.json()["features"]["kill-switch"]
    max_age = int(before["Cache-Control"].split("max-age=")[1])
    assert 0 < max_age <= 30

    later = start.timestamp() + 1
    monkeypatch.setattr("serving.payload.time", types.SimpleNamespace(time=lambda: later))
    after = client.get(_url(catalog.client_key), HTTP_IF_NONE_MATCH=before["ETag"])
    assert after.status_code == 200
    assert after.json()["features"]["kill-switch"]["rules"][0]["force"] is False
    # The SDKs skip a payload whose dateUpdated equals the one they cached.
    assert after.json()["dateUpdated"] > before.json()["dateUpdated"]


def test_sdk_payload__if_none_match__304_with_etag_and_cache_control(client: Client, catalog: Catalog) -> None:
    first = client.get(_url(catalog.client_key))
    assert first["Cache-Control"].startswith("public, max-age=")
    assert first["Access-Control-Allow-Origin"] == "*"
    second = client.get(_url(catalog.client_key), HTTP_IF_NONE_MATCH=first["ETag"])
    assert second.status_code == 304
    assert second.content == b""
    assert second["ETag"] == first["ETag"]


def test_sdk_payload__config_written__new_etag(client: Client, catalog: Catalog) -> None:
    etag = client.get(_url(catalog.client_key))["ETag"]
    services.flag_state_update(actor=Actor.system(), flag=catalog.flags["kill-switch"],
                               environment=catalog.environment, enabled=False)
    response = client.get(_url(catalog.client_key), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag
    assert response.json()["features"]["kill-switch"]["enabled"] is False


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [("server", 403, "forbidden"), ("sdk-client-unknown", 401, "unauthorized"), ("sbm_token", 403, "forbidden")],
)
def test_sdk_payload__not_a_client_key__refused(
    client: Client, catalog: Catalog, key: str, status: int, code: str
) -> None:
    response = client.get(_url(catalog.server_key if key == "server" else key))
    assert response.status_code == status
    assert response.json()["code"] == code


def test_sdk_payload__post__405(client: Client, catalog: Catalog) -> None:
    response: Any = client.post(_url(catalog.client_key))
    assert response.status_code == 405
