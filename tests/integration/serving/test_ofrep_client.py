"""The real OpenFeature Python SDK with the OFREP provider against a live server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from flags import services
from flags.engine.evaluation import evaluate
from serving.snapshots import store
from tests.integration.serving.conftest import ACTOR, Catalog, assert_ofrep, build_catalog, unit_context


@pytest.fixture
def live_catalog(transactional_db: Any) -> Catalog:
    return build_catalog(services.environment_create(actor=ACTOR, key="production"))


@pytest.fixture
def domains() -> Iterator[None]:
    yield
    api.clear_providers()


def _client(url: str, key: str, domain: str) -> Any:
    api.set_provider(OFREPProvider(url, headers_factory=lambda: {"X-API-Key": key}, timeout=10), domain=domain)
    return api.get_client(domain=domain)


def test_ofrep_provider__live_server__typed_values_targeting_and_errors(
    live_server: Any, live_catalog: Catalog, domains: None
) -> None:
    client = _client(live_server.url, live_catalog.client_key, "serving")
    unit = EvaluationContext(targeting_key="unit-1", attributes={"country": "US", "plan": "free"})

    # boolean
    details = client.get_boolean_details("kill-switch", False, unit)
    assert (details.value, details.variant, details.reason) == (True, "on", Reason.STATIC)
    assert details.error_code is None
    disabled = client.get_boolean_details("disabled-flag", True, unit)
    assert (disabled.value, disabled.variant, disabled.reason) == (False, "off", Reason.DISABLED)

    # string, from an experiment: the same variation the server computes for that unit
    snapshot = store.resolve(live_catalog.client_key)[1].snapshot  # type: ignore[index]
    for i in range(5):
        context = EvaluationContext(targeting_key=f"unit-{i}", attributes={"company": "acme"})
        expected = evaluate(snapshot, "search-ui", {"id": f"unit-{i}", "company": "acme"})
        got = client.get_string_details("search-ui", "fallback", context)
        assert (got.value, got.variant) == (expected.value, expected.variant)
        assert got.reason in (Reason.SPLIT, Reason.STATIC)

    # numbers: an integer and a float flag
    assert client.get_integer_value("max-upload", 1, unit) in (25, 100)
    business = EvaluationContext(targeting_key="unit-2", attributes={"plan": "business", "company": "acme"})
    assert client.get_integer_details("max-upload", 1, business).variant == "huge"
    assert client.get_integer_value("max-upload", 1, business) == 1000
    german = EvaluationContext(targeting_key="unit-9", attributes={"country": "DE"})
    ratio = client.get_float_details("ratio", 1.0, german)
    assert ratio.value in (0.75, 2.5) and ratio.reason == Reason.SPLIT

    # object, and targeting on attributes
    eu_pro = EvaluationContext(targeting_key="unit-1", attributes={"country": "FR", "plan": "pro"})
    pricing = client.get_object_details("pricing", {}, eu_pro)
    assert pricing.value == {"layout": "classic", "billing": "annual", "tiers": [1, 2, 3]}
    assert (pricing.variant, pricing.reason) == ("annual", Reason.TARGETING_MATCH)
    beta = client.get_boolean_details("new-checkout", False, EvaluationContext(targeting_key="unit-97"))
    assert (beta.value, beta.reason) == (True, Reason.TARGETING_MATCH)

    # a missing flag: the code default, with FLAG_NOT_FOUND
    missing = client.get_boolean_details("no-such-flag", True, unit)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)

    # no targeting key: evaluated (OpenFeature makes it optional); rollouts hashed on it do not match
    anonymous = client.get_boolean_details("kill-switch", False, EvaluationContext(attributes={"country": "DE"}))
    assert (anonymous.value, anonymous.error_code) == (True, None)
    assert client.get_boolean_value("new-checkout", True, EvaluationContext(attributes={"country": "DE"})) is False
    assert client.get_boolean_details("kill-switch", False, unit).flag_metadata["type"] == "boolean"

    # a bad key: the code default, with an error
    bad = _client(live_server.url, "sdk-client-not-a-key", "bad-key")
    refused = bad.get_boolean_details("kill-switch", False, unit)
    assert refused.value is False
    assert refused.error_code == ErrorCode.GENERAL
    assert refused.reason == Reason.ERROR


def _http_post(url: str, body: dict[str, Any], key: str) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-API-Key": key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_ofrep__free_form_metadata__typed_beside_own_fields_single_bulk_and_provider(
    live_server: Any, live_catalog: Catalog, domains: None
) -> None:
    metadata = {"release": "1.0.2", "replicas": 2, "cost_weight": 0.5, "pii": False}
    services.flag_update(actor=ACTOR, flag=live_catalog.flags["pricing"], owner="growth", metadata=metadata)
    expected = {**metadata, "type": "json", "owner": "growth"}

    # Over real HTTP, integers stay integers, floats floats and booleans booleans.
    single = _http_post(f"{live_server.url}/ofrep/v1/evaluate/flags/pricing", {"context": unit_context(3)},
                        live_catalog.client_key)
    assert_ofrep(single, "serverEvaluationSuccess")
    assert single["metadata"] == expected
    assert {k: type(v) for k, v in single["metadata"].items()} == {k: type(v) for k, v in expected.items()}
    bulk = _http_post(f"{live_server.url}/ofrep/v1/evaluate/flags", {"context": unit_context(3)},
                      live_catalog.client_key)
    assert_ofrep(bulk, "bulkEvaluationSuccess")
    by_key = {item["key"]: item for item in bulk["flags"]}
    assert by_key["pricing"]["metadata"] == expected
    assert by_key["kill-switch"]["metadata"] == {"type": "boolean"}

    # The OpenFeature provider hands it to the application (and its hooks) as flag metadata.
    client = _client(live_server.url, live_catalog.client_key, "metadata")
    details = client.get_object_details("pricing", {}, EvaluationContext(targeting_key="unit-3"))
    assert dict(details.flag_metadata) == expected
