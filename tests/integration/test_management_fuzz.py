"""Fuzz the management API and the events API from the service's own OpenAPI schema: no 5xx,
every client error in the documented `{code, message, details}` shape, and the schema itself
well formed (unique component names, the token scheme on every management operation)."""

from __future__ import annotations

import itertools
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from audit.types import Actor
from base import tokens
from base.models import ApiToken, Environment
from experiments.models import Experiment, Metric
from flags.models import Flag, Rule, Segment
from tests.openapi_wsgi import schema_over_wsgi

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MANAGEMENT_PATHS = r"^/api/v1/(?!evaluate)"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))


@pytest.fixture
def seeded(db: Any) -> dict[str, Any]:
    """The demo data (flags, segments, environments, a running experiment with metrics) and a write token."""
    call_command("seed_demo", verbosity=0)
    call_command("seed_experiments", "--users", "200", "--no-readout", verbosity=0)
    user = User.objects.create_superuser("fuzzer", "fuzzer@example.com", "pw-fuzzer-123")
    _, token = tokens.api_token_create(actor=Actor.system(), user=user, name="fuzz", scope=ApiToken.Scope.WRITE)
    environment = Environment.objects.get(key="production")
    return {
        "token": token,
        "sdk_key": environment.server_key,
        "keys": {
            "flags": sorted(Flag.objects.values_list("key", flat=True)),
            "experiments": sorted(Experiment.objects.values_list("key", flat=True)),
            "metrics": sorted(Metric.objects.values_list("key", flat=True)),
            "segments": sorted(Segment.objects.values_list("key", flat=True)),
            "environments": sorted(Environment.objects.values_list("key", flat=True)),
        },
        "rules": [str(uid) for uid in Rule.objects.values_list("uid", flat=True)],
    }


@pytest.fixture
def schema(seeded: dict[str, Any]) -> Iterator[Any]:
    with schema_over_wsgi(MANAGEMENT_PATHS) as loaded:
        yield loaded


def _known_parameters(path: str, parameters: dict[str, Any], seeded: dict[str, Any], rng: random.Random) -> None:
    """Point most path parameters at existing objects, so that cases get past the lookups."""
    collection = path.split("/")[3]  # /api/v1/<collection>/...
    for name in list(parameters):
        if name == "key" and seeded["keys"].get(collection):
            parameters[name] = rng.choice(seeded["keys"][collection])
        elif name == "env":
            parameters[name] = rng.choice(seeded["keys"]["environments"])
        elif name == "uid" and seeded["rules"]:
            parameters[name] = rng.choice(seeded["rules"])


def _assert_error_shape(response: Any, label: str) -> None:
    if not 400 <= response.status_code < 500:
        return
    body = orjson.loads(response.content)
    assert isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("message"), str), (
        label, response.status_code, body)


def test_management_api__fuzzed_requests__no_5xx_and_errors_documented(schema: Any, seeded: dict[str, Any]) -> None:
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /api/v1/flags", "PATCH /api/v1/experiments/{key}", "POST /api/v1/events",
            "POST /api/v1/metrics", "PATCH /api/v1/segments/{key}"} <= labels, labels
    strategy = schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE)
    turn = itertools.count()
    rng = random.Random(7)
    seen: dict[str, set[int]] = {}

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        n = next(turn)
        if n % 4 != 3 and case.path_parameters:
            _known_parameters(case.operation.path, case.path_parameters, seeded, rng)
        if case.operation.path == "/api/v1/events":
            headers = {"X-API-Key": seeded["sdk_key"]}
        else:
            headers = {"Authorization": f"Bearer {seeded['token']}"}
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        _assert_error_shape(response, case.operation.label)
        seen.setdefault(case.operation.label, set()).add(response.status_code)

    fuzz()
    # Writes got through validation, not only the authentication and the lookups.
    assert any(code in (200, 201, 202) for label, codes in seen.items() for code in codes
               if label.startswith(("POST", "PATCH"))), seen


def test_openapi_schema__generated__without_warnings(tmp_path: Path) -> None:
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml"))


def test_openapi_schema__management_operations__token_scheme_and_unique_names(client: Client, admin_user: Any) -> None:
    import yaml

    client.force_login(admin_user)
    document = yaml.safe_load(client.get("/api/schema/").content)
    schemes = document["components"]["securitySchemes"]
    assert schemes["managementToken"] == {**schemes["managementToken"], "type": "http", "scheme": "bearer"}
    for path, operations in document["paths"].items():
        if not re.match(MANAGEMENT_PATHS, path) or path == "/api/v1/events":
            continue
        for method, operation in operations.items():
            names = {name for requirement in operation.get("security", []) for name in requirement}
            assert "managementToken" in names, (method, path)
    # Nested input serializers of different views get different names, and no enum is numbered.
    components = list(document["components"]["schemas"])
    assert "PatchedFlagStateInputRequest" in components, components
    assert not [name for name in components if re.search(r"\d+Enum$", name)], components
