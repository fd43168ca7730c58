"""Fixtures of the serving tests: isolated snapshot/exposure state and a representative catalog."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from audit.types import Actor
from base.models import Environment
from experiments.exposures import ServedExposure
from flags import services
from flags.models import Flag
from serving.exposures import buffer as exposure_buffer
from serving.ratelimit import limiter
from serving.snapshots import store
from serving.usage import recorder as usage
from tests.conformance import shared_path
from tests.integration.serving.relayed import relayed_server  # noqa: F401 - a fixture
from tests.integration.serving.streaming import stack, stack_settings, web_settings  # noqa: F401 - fixtures

RECORDED: list[ServedExposure] = []


def record_in_memory(exposures: Any) -> None:
    """A recorder standing in for the experiments app: it keeps what it is given."""
    RECORDED.extend(exposures)


@pytest.fixture(autouse=True)
def serving_state(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test starts with empty caches, its own snapshot directory, no background
    flushing (tests flush explicitly), no rate limit and the in-memory recorder."""
    directory = tmp_path / "serving"
    settings.SNAPSHOT_DIR = directory
    settings.SNAPSHOT_CHECK_INTERVAL = 0.0
    settings.EXPOSURE_FLUSH_INTERVAL = 0.0
    settings.EVALUATION_FLUSH_INTERVAL = 0.0
    settings.RATE_LIMIT_PER_SECOND = 0.0
    monkeypatch.setattr(exposure_buffer, "recorder", record_in_memory)
    store.reset()
    limiter.reset()
    exposure_buffer.reset()
    usage.reset()
    RECORDED.clear()
    yield directory
    store.reset()
    limiter.reset()
    exposure_buffer.reset()
    usage.reset()
    RECORDED.clear()


def sdk_post(client: Client, path: str, body: Any, key: str | None, **headers: str) -> Any:
    extra: dict[str, Any] = {"HTTP_X_API_KEY": key} if key else {}
    extra.update(headers)
    return client.post(path, body, content_type="application/json", **extra)


@dataclass
class Catalog:
    environment: Environment
    flags: dict[str, Flag] = field(default_factory=dict)

    @property
    def client_key(self) -> str:
        return self.environment.client_key

    @property
    def server_key(self) -> str:
        return self.environment.server_key


ACTOR = Actor(label="catalog", via="system")

BETA_IDS = [f"unit-{i}" for i in range(0, 10_000, 97)]


def build_catalog(production: Environment) -> Catalog:
    """One flag of every shape the mapper knows: each value type, force / rollout / experiment
    rules, id-list and condition segments, flag and rule prerequisites, namespaces, schedules,
    a disabled flag and an archived one."""
    env = production
    cat = Catalog(environment=env)
    now = timezone.now()

    def flag(key: str, **kwargs: Any) -> Flag:
        cat.flags[key] = services.flag_create(actor=ACTOR, key=key, **kwargs)
        return cat.flags[key]

    def rule(flag_key: str, **kwargs: Any) -> None:
        services.flag_rule_create(actor=ACTOR, flag=cat.flags[flag_key], environment=env, **kwargs)

    def enable(flag_key: str, **kwargs: Any) -> None:
        services.flag_state_update(actor=ACTOR, flag=cat.flags[flag_key], environment=env, enabled=True, **kwargs)

    services.segment_create(actor=ACTOR, key="beta", kind="ids", attribute="id", ids=BETA_IDS)
    services.segment_create(actor=ACTOR, key="eu", kind="condition", condition={"country": {"$in": ["DE", "FR", "NL"]}})
    services.segment_create(actor=ACTOR, key="big-companies", kind="ids", attribute="company", ids=["acme", "globex"])

    flag("kill-switch")
    enable("kill-switch", default_variant="on")

    flag("disabled-flag")
    services.flag_state_update(actor=ACTOR, flag=cat.flags["disabled-flag"], environment=env, default_variant="on")

    flag("new-checkout")
    rule("new-checkout", kind="force", variant="on", segments=["beta"])
    rule("new-checkout", kind="rollout", variant="on", coverage=0.3)
    enable("new-checkout")

    flag(
        "pricing",
        value_type="json",
        variants=[
            {"key": "classic", "value": {"layout": "classic", "cta": "Start"}},
            {"key": "compact", "value": {"layout": "compact", "cta": "Try"}},
            {"key": "annual", "value": {"layout": "classic", "billing": "annual", "tiers": [1, 2, 3]}},
        ],
    )
    rule("pricing", kind="force", variant="annual", segments=["eu"], condition={"plan": "pro"})
    rule(
        "pricing",
        kind="experiment",
        variations=["classic", "compact", "annual"],
        weights=[0.5, 0.25, 0.25],
        coverage=0.8,
        experiment_key="pricing-exp",
    )
    enable("pricing")

    flag("search-ranking", value_type="string",
         variants=[{"key": "bm25", "value": "bm25"}, {"key": "semantic", "value": "semantic"}])
    rule(
        "search-ranking",
        kind="experiment",
        variations=["bm25", "semantic"],
        weights=[0.5, 0.5],
        hash_attribute="company",
        experiment_key="search-exp",
        namespace=["search-layer", 0.0, 0.6],
    )
    enable("search-ranking")

    flag("search-ui", value_type="string",
         variants=[{"key": "list", "value": "list"}, {"key": "grid", "value": "grid"}])
    rule(
        "search-ui",
        kind="experiment",
        variations=["list", "grid"],
        weights=[0.3, 0.7],
        experiment_key="search-ui-exp",
        namespace=["search-layer", 0.6, 1.0],
        phase="2",
    )
    enable("search-ui")

    flag("max-upload", value_type="number",
         variants=[{"key": "standard", "value": 25}, {"key": "large", "value": 100}, {"key": "huge", "value": 1000}])
    rule("max-upload", kind="force", variant="huge", condition={"plan": "business"}, segments=["big-companies"])
    rule("max-upload", kind="force", variant="large", condition={"plan": "business"})
    rule("max-upload", kind="rollout", variant="large", coverage=0.5, hash_attribute="company",
         fallback_attribute="id")
    enable("max-upload")

    flag("upsell", prerequisites=[{"flag": "new-checkout", "condition": {"value": True}}])
    rule("upsell", kind="rollout", variant="on", coverage=0.5)
    enable("upsell")

    flag("banner", value_type="string",
         variants=[{"key": "welcome", "value": "Welcome"}, {"key": "semantic", "value": "Try semantic search"}])
    rule("banner", kind="force", variant="semantic",
         prerequisites=[{"flag": "search-ranking", "condition": {"value": "semantic"}}])
    enable("banner")

    flag("ratio", value_type="number", variants=[{"key": "low", "value": 0.75}, {"key": "high", "value": 2.5}])
    rule("ratio", kind="experiment", variations=["low", "high"], weights=[0.5, 0.5], seed="ratio-seed",
         condition={"country": {"$ne": "US"}})
    enable("ratio")

    flag("scheduled")
    rule("scheduled", kind="force", variant="off", starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    rule("scheduled", kind="force", variant="on", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    enable("scheduled")

    flag("later")
    rule("later", kind="force", variant="on", starts_at=now + timedelta(days=1))
    enable("later")

    flag("skipped-rule")
    rule("skipped-rule", kind="force", variant="on", enabled=False)
    enable("skipped-rule")

    flag("retired")
    enable("retired", default_variant="on")
    services.flag_archive(actor=ACTOR, flag=cat.flags["retired"])
    del cat.flags["retired"]
    cat.environment.refresh_from_db()
    return cat


COUNTRIES = ("DE", "US", "FR", "NL", "GB", "JP")
PLANS = ("free", "pro", "business")
COMPANIES = ("acme", "globex", "initech", "umbrella", None)


def unit_context(i: int) -> dict[str, Any]:
    """Attributes of unit ``i``: spread over countries, plans and companies (some have none)."""
    context: dict[str, Any] = {
        "targetingKey": f"unit-{i}",
        "country": COUNTRIES[i % len(COUNTRIES)],
        "plan": PLANS[(i // 7) % len(PLANS)],
    }
    company = COMPANIES[(i // 3) % len(COMPANIES)]
    if company is not None:
        context["company"] = company
    return context


@pytest.fixture(scope="module")
def catalog(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Catalog]:
    """The catalog, built once per module and committed (building it takes a second or two);
    each test still runs in its own rolled-back transaction. The database is flushed after
    the module, as a transactional test would leave it."""
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        environment = services.environment_create(actor=ACTOR, key="production")
        built = build_catalog(environment)
    yield built
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


# --- the OFREP specification, read in place --------------------------------------------------


@cache
def _ofrep_components() -> dict[str, Any]:
    spec = yaml.safe_load(shared_path("protocols/ofrep-openapi.yaml").read_text(encoding="utf-8"))
    components: dict[str, Any] = _one_of_as_any_of(spec["components"])
    return components


def _one_of_as_any_of(node: Any) -> Any:
    """The specification's ``oneOf`` alternatives overlap (``codeDefaultFlag`` accepts every
    object, and an integer is also a ``floatFlag``), so no answer could match exactly one of
    them; we check that an answer matches at least one."""
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _one_of_as_any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_one_of_as_any_of(v) for v in node]
    return node


@cache
def _ofrep_validator(schema: str) -> Draft202012Validator:
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": _ofrep_components(),
        "$ref": f"#/components/schemas/{schema}",
    }
    return Draft202012Validator(document)


def assert_ofrep(body: Any, schema: str) -> None:
    """Validate a response body against a schema of the OFREP specification's components."""
    errors = sorted(_ofrep_validator(schema).iter_errors(body), key=str)
    assert not errors, f"{schema}: {[e.message for e in errors]} in {body}"
