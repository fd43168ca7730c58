"""Fuzz the SDK endpoints from the service's own OpenAPI schema (served at /api/schema/):
no 5xx, and every answer matches its documented status code and body schema."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.serving.conftest import Catalog
from tests.openapi_wsgi import schema_over_wsgi

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SDK_PATHS = r"^/(ofrep/v1/evaluate/flags|api/v1/evaluate|api/features/|api/eval/)"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 120


@pytest.fixture
def sdk_schema(catalog: Catalog) -> Iterator[Any]:
    with schema_over_wsgi(SDK_PATHS) as loaded:
        yield loaded


def test_sdk_endpoints__fuzzed_requests__documented_answers_and_no_5xx(sdk_schema: Any, catalog: Catalog) -> None:
    operations = [result.ok() for result in sdk_schema.get_all_operations()]
    assert sorted(op.label for op in operations) == [
        "GET /api/features/{clientKey}",
        "POST /api/eval/{clientKey}",
        "POST /api/v1/evaluate",
        "POST /ofrep/v1/evaluate/flags",
        "POST /ofrep/v1/evaluate/flags/{key}",
    ]
    strategy = sdk_schema.as_strategy(GenerationMode.POSITIVE) | sdk_schema.as_strategy(GenerationMode.NEGATIVE)
    turn = itertools.count()
    flags = sorted(catalog.flags)
    seen: dict[str, set[int]] = {}

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        # Most cases carry a valid key and name an existing flag, so that bodies reach
        # evaluation; every fourth case keeps what was generated.
        n = next(turn)
        keyed = n % 4 != 3
        headers = {"X-API-Key": catalog.client_key} if keyed else {}
        parameters = case.path_parameters or {}
        if keyed and "clientKey" in parameters:
            parameters["clientKey"] = catalog.client_key
        if keyed and "key" in parameters:
            parameters["key"] = flags[n % len(flags)]
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen.setdefault(case.operation.label, set()).add(response.status_code)

    fuzz()
    # The run reached evaluation, not only the key check.
    assert all(200 in codes for codes in seen.values()), seen
