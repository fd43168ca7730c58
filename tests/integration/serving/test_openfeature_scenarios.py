"""The OpenFeature specification's flag-evaluation scenarios, run through the real OpenFeature
Python SDK and its OFREP provider against this service over HTTP.

The specification publishes two gherkin suites for flag evaluation, ``evaluation.feature``
(13 scenarios) and ``evaluation_v2.feature`` (82 once its outlines are expanded): 95 in all.
Each one is a case here, named ``<suite> | <scenario> | <example>``, with the suite's inputs
(flag key, typed fallback, context) and its expectations (value, reason, variant, error code,
flag key, metadata, provider status). The flags they use are seeded in this service with the
same keys, variants and default variants; the suites' context-driven flags become force rules
whose conditions are the suites' targeting expressions.

A case the service cannot pass by design, or that fails in the client library, is marked
``xfail(strict=True)`` with its reason, so it turns into a failure the day it starts passing.
``docs/sdk.md`` lists them.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.management import call_command
from django.core.signals import request_started
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagEvaluationOptions
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import ProviderStatus
from pytest_django.live_server_helper import LiveServer

from base.models import Environment
from devtools.relay import free_port
from flags import services
from tests.integration.serving.conftest import ACTOR

TYPES = ("Boolean", "String", "Integer", "Float", "Object")
TEMPLATE = {"showImages": True, "title": "Check out these pics!", "imagesPerPage": 100}
BALLMER = "ballmer@macrosoft.com"

# --- reasons a case cannot pass ------------------------------------------------------------

NO_DEFAULT_REASON = (
    "OFREP's reason enum has no DEFAULT: a flag whose rules pass the unit by serves its default "
    "variant with STATIC"
)
NO_CACHED_REASON = (
    "every OFREP call is evaluated by the service and the Python OFREP provider keeps no cache, "
    "so no answer is CACHED (OFREP's reason enum has no CACHED either)"
)
DISABLED_SERVES_OFF = (
    "a flag switched off serves its off variant (the kill switch's value), not the code default; "
    "here the off variant is the empty object and the fallback is {\"a\": 1}"
)
BOOL_IS_INT = (
    "client library: Python's bool is a subclass of int, so the SDK and the OFREP provider "
    "accept true as an integer and report no TYPE_MISMATCH"
)
NO_PROVIDER_STATES = (
    "client library: the Python OFREP provider does nothing when it is set and emits no events, "
    "so its status is READY whatever the service's state, and a failed call is a GENERAL error"
)
MUTABLE_DETAILS = "client library: the Python SDK's evaluation details are a mutable dataclass"
ASYNC_BLOCKS = (
    "client library: the Python OFREP provider has no asynchronous resolver; the SDK's default "
    "one calls the blocking HTTP resolver, so the event loop waits for the answer"
)


# --- the flags ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    value_type: str
    variants: dict[str, Any]
    default: str
    off: str | None = None  # the variant served when the flag is switched off
    enabled: bool = True
    when: dict[str, Any] | None = None  # a force rule serving ``target`` to units matching it
    target: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)  # the flag's free-form metadata


def _standard() -> dict[str, Seed]:
    return {
        "boolean": Seed("boolean", {"on": True, "off": False}, "on"),
        "string": Seed("string", {"greeting": "hi", "parting": "bye"}, "greeting"),
        "integer": Seed("number", {"one": 1, "ten": 10}, "ten"),
        "float": Seed("number", {"tenth": 0.1, "half": 0.5}, "half"),
        "object": Seed("json", {"empty": {}, "template": TEMPLATE}, "template"),
    }


def _zeros() -> dict[str, Seed]:
    return {
        "boolean": Seed("boolean", {"zero": False, "non-zero": True}, "zero"),
        "string": Seed("string", {"zero": "", "non-zero": "str"}, "zero"),
        "integer": Seed("number", {"zero": 0, "non-zero": 1}, "zero"),
        "float": Seed("number", {"zero": 0.0, "non-zero": 1.0}, "zero"),
        "object": Seed("json", {"zero": {}, "non-zero": TEMPLATE}, "zero"),
    }


def seeds() -> dict[str, Seed]:
    """The flags the two suites evaluate."""
    flags: dict[str, Seed] = {}
    for kind, seed in _standard().items():
        flags[f"{kind}-flag"] = seed
        # Switched off: the kill switch serves the variant that is not the default one.
        other = next(key for key in seed.variants if key != seed.default)
        flags[f"{kind}-disabled-flag"] = dataclasses.replace(seed, enabled=False, off=other)
    for kind, seed in _zeros().items():
        flags[f"{kind}-zero-flag"] = seed
        flags[f"{kind}-targeted-zero-flag"] = dataclasses.replace(seed, when={"email": BALLMER}, target="zero")
    flags["metadata-flag"] = Seed("boolean", {"on": True, "off": False}, "on",
                                  metadata={"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": True})
    flags["wrong-flag"] = Seed("string", {"one": "uno", "two": "dos"}, "one")
    flags["complex-targeted"] = Seed(
        "string", {"internal": "INTERNAL", "external": "EXTERNAL"}, "external",
        when={"customer": False, "email": BALLMER, "age": {"$gt": 10}}, target="internal",
    )
    flags["context-aware"] = Seed(
        "string", {"internal": "INTERNAL", "external": "EXTERNAL"}, "external",
        when={"fn": "Sulisław", "ln": "Świętopełk", "age": 29, "customer": False}, target="internal",
    )
    return flags


def seed_flags(environment: Environment) -> None:
    for key, seed in seeds().items():
        variants = [{"key": name, "value": value} for name, value in seed.variants.items()]
        flag = services.flag_create(actor=ACTOR, key=key, value_type=seed.value_type, variants=variants,
                                    default_variant=seed.default, off_variant=seed.off or seed.default,
                                    metadata=seed.metadata)
        if seed.when is not None:
            services.flag_rule_create(actor=ACTOR, flag=flag, environment=environment, kind="force",
                                      variant=seed.target, condition=seed.when)
        services.flag_state_update(actor=ACTOR, flag=flag, environment=environment, enabled=seed.enabled)


@dataclass
class Service:
    url: str
    server_key: str


@pytest.fixture(scope="module")
def service(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Service]:
    """The flags, committed once for the module, and a live server of this process answering
    OFREP over real HTTP (its own, so that the cases need not flush the database each)."""
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        environment = services.environment_create(actor=ACTOR, key="production")
        seed_flags(environment)
        environment.refresh_from_db()
    server = LiveServer("localhost")
    try:
        yield Service(url=server.url, server_key=environment.server_key)
    finally:
        server.stop()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


# --- the steps -----------------------------------------------------------------------------


@dataclass
class World:
    """What a scenario's steps share: the service, and the client they set up."""

    service: Service
    domain: str
    context: dict[str, Any] = field(default_factory=dict)

    def provider(self, state: str = "stable") -> Any:
        """``Given a <state> provider``: the real OFREP provider, pointed at the service in the
        condition that state names (nothing listening yet; a key the service refuses)."""
        url, key = self.service.url, self.service.server_key
        if state in ("not ready", "error"):
            url = f"http://127.0.0.1:{free_port()}"
        elif state == "fatal":
            key = "sdk-server-revoked-or-unknown"
        api.set_provider(OFREPProvider(url, headers_factory=lambda: {"X-API-Key": key}, timeout=10),
                         domain=self.domain)
        return api.get_client(domain=self.domain)

    def evaluation_context(self) -> EvaluationContext:
        return EvaluationContext(attributes=dict(self.context))


def typed(kind: str, text: str) -> Any:
    """A value of the suites' tables, in the named type."""
    if kind == "Boolean":
        return {"true": True, "false": False}[text]
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Object":
        return json.loads(text.replace('\\"', '"'))
    return text


def details(client: Any, kind: str, key: str, fallback: Any, context: EvaluationContext | None = None,
            options: FlagEvaluationOptions | None = None) -> FlagEvaluationDetails[Any]:
    method = getattr(client, f"get_{kind.lower()}_details")
    result: FlagEvaluationDetails[Any] = method(key, fallback, context, options)
    return result


def value_of(client: Any, kind: str, key: str, fallback: Any, context: EvaluationContext | None = None) -> Any:
    return getattr(client, f"get_{kind.lower()}_value")(key, fallback, context)


def same(got: Any, expected: Any) -> bool:
    """Equal and of the same type (so 0 is not 0.0 and true is not 1)."""
    return bool(got == expected and type(got) is type(expected))


Step = Callable[[World], None]


def evaluated(kind: str, key: str, fallback: str, *, context: dict[str, Any] | None = None,
              value: str | None = None, reason: str | None = None, variant: str | None = None,
              error: str | None = None, flag_key: bool = False, state: str = "stable") -> Step:
    """``Given a <kind>-flag with key and fallback`` [and a context], ``When the flag was evaluated
    with details``, ``Then`` the value / reason / variant / error code / flag key given."""

    def run(world: World) -> None:
        client = world.provider(state)
        world.context.update(context or {})
        default = typed(kind, fallback)
        got = details(client, kind, key, default, world.evaluation_context())
        if value is not None:
            assert same(got.value, typed(kind, value)), got
        if reason is not None:
            assert got.reason == reason, got
        if variant is not None:
            assert got.variant == variant, got
        if error is not None:
            assert got.error_code == error, got
        if flag_key:
            assert got.flag_key == key, got

    return run


# --- evaluation.feature ----------------------------------------------------------------------


def v1_value(kind: str, key: str, fallback: str, expected: Any) -> Step:
    """``When a <kind> flag ... is evaluated with default value``, ``Then the resolved value``."""

    def run(world: World) -> None:
        got = value_of(world.provider(), kind, key, typed(kind, fallback) if fallback else None)
        assert same(got, expected), got

    return run


def v1_details(kind: str, key: str, fallback: str, expected: Any, variant: str, reason: str) -> Step:
    def run(world: World) -> None:
        got = details(world.provider(), kind, key, typed(kind, fallback) if fallback else None)
        assert same(got.value, expected), got
        assert (got.variant, got.reason) == (variant, reason), got

    return run


def v1_context(world: World) -> None:
    client = world.provider()
    unit = EvaluationContext(attributes={"fn": "Sulisław", "ln": "Świętopełk", "age": 29, "customer": False})
    assert client.get_string_value("context-aware", "EXTERNAL", unit) == "INTERNAL"
    assert client.get_string_value("context-aware", "EXTERNAL", EvaluationContext()) == "EXTERNAL"


def v1_error(kind: str, key: str, fallback: Any, code: str) -> Step:
    def run(world: World) -> None:
        got = details(world.provider(), kind, key, fallback)
        assert same(got.value, fallback), got
        assert (got.reason, got.error_code) == ("ERROR", code), got

    return run


EVALUATION: list[tuple[str, Step, str | None]] = [
    ("Resolves boolean value", v1_value("Boolean", "boolean-flag", "false", True), None),
    ("Resolves string value", v1_value("String", "string-flag", "bye", "hi"), None),
    ("Resolves integer value", v1_value("Integer", "integer-flag", "1", 10), None),
    ("Resolves float value", v1_value("Float", "float-flag", "0.1", 0.5), None),
    ("Resolves object value", v1_value("Object", "object-flag", "", TEMPLATE), None),
    ("Resolves boolean details", v1_details("Boolean", "boolean-flag", "false", True, "on", "STATIC"), None),
    ("Resolves string details", v1_details("String", "string-flag", "bye", "hi", "greeting", "STATIC"), None),
    ("Resolves integer details", v1_details("Integer", "integer-flag", "1", 10, "ten", "STATIC"), None),
    ("Resolves float details", v1_details("Float", "float-flag", "0.1", 0.5, "half", "STATIC"), None),
    ("Resolves object details", v1_details("Object", "object-flag", "", TEMPLATE, "template", "STATIC"), None),
    ("Resolves based on context", v1_context, None),
    ("Flag not found", v1_error("String", "missing-flag", "uh-oh", "FLAG_NOT_FOUND"), None),
    ("Type error", v1_error("Integer", "wrong-flag", 13, "TYPE_MISMATCH"), None),
]


# --- evaluation_v2.feature ---------------------------------------------------------------------

KEYS = {kind: f"{kind.lower()}-flag" for kind in TYPES}
FALLBACKS = {"Boolean": "false", "String": "bye", "Integer": "1", "Float": "0.1", "Object": '{\\"a\\": 1}'}
RESOLVED = {"Boolean": "true", "String": "hi", "Integer": "10", "Float": "0.5", "Object": json.dumps(TEMPLATE)}
VARIANTS = {"Boolean": "on", "String": "greeting", "Integer": "ten", "Float": "half", "Object": "template"}
ZERO_FALLBACKS = {"Boolean": "true", "String": "hi", "Integer": "1", "Float": "0.1", "Object": '{\\"a\\": 1}'}
ZEROS = {"Boolean": "false", "String": "", "Integer": "0", "Float": "0.0", "Object": "{}"}
# The fallbacks of the empty-context and null-value outlines.
TARGETED_FALLBACKS = {"Boolean": "true", "String": "str", "Integer": "1", "Float": "1.0", "Object": '{\\"a\\": 1}'}
MISMATCHED = {"Boolean": "string-flag", "String": "boolean-flag", "Integer": "boolean-flag",
              "Float": "boolean-flag", "Object": "boolean-flag"}


def targeted(kind: str) -> str:
    return f"{kind.lower()}-targeted-zero-flag"


def metadata_step(world: World) -> None:
    got = details(world.provider(), "Boolean", "metadata-flag", True)
    expected = {"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": True}
    for name, value in expected.items():
        assert same(got.flag_metadata.get(name), value), got


def multiple_attributes(world: World) -> None:
    evaluated("String", "complex-targeted", "default",
              context={"email": BALLMER, "role": "admin", "age": 65, "customer": False},
              value="INTERNAL", reason="TARGETING_MATCH")(world)


def cached(kind: str, key: str, fallback: str) -> Step:
    def run(world: World) -> None:
        client = world.provider()
        details(client, kind, key, typed(kind, fallback))
        assert details(client, kind, key, typed(kind, fallback)).reason == "CACHED"

    return run


STATUSES = {"stable": ProviderStatus.READY, "not ready": ProviderStatus.NOT_READY, "error": ProviderStatus.ERROR,
            "fatal": ProviderStatus.FATAL, "stale": ProviderStatus.STALE}


def status(state: str) -> Step:
    def run(world: World) -> None:
        assert world.provider(state).get_provider_status() == STATUSES[state]

    return run


class Recording(Hook):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def before(self, hook_context: HookContext, hints: HookHints) -> None:
        self.log.append(f"before:{self.name}")

    def after(self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints) -> None:
        self.log.append(f"after:{self.name}")

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.log.append(f"error:{self.name}")

    def finally_after(self, hook_context: HookContext, details: FlagEvaluationDetails[Any],
                      hints: HookHints) -> None:
        self.log.append(f"finally:{self.name}")


def hooks_in_options(world: World) -> None:
    log: list[str] = []
    options = FlagEvaluationOptions(hooks=[Recording("first", log), Recording("second", log)])
    got = details(world.provider(), "Boolean", "boolean-flag", False, None, options)
    assert got.value is True and got.error_code is None, got
    # Before hooks run in the order given, the after and finally stages in the reverse one.
    assert log == ["before:first", "before:second", "after:second", "after:first",
                   "finally:second", "finally:first"]


def context_immutability(world: World) -> None:
    client = world.provider()
    attributes: dict[str, Any] = {"email": BALLMER, "tags": ["a", "b"], "profile": {"age": 30}}
    context = EvaluationContext(targeting_key="unit-1", attributes=attributes)
    before = copy.deepcopy(context)
    got = details(client, "Boolean", "boolean-flag", False, context)
    assert got.value is True
    assert context == before
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
        got.value = False


def asynchronous(kind: str) -> Step:
    """``When the flag was evaluated with details asynchronously``, ``Then the evaluation should
    complete without blocking``: while the service holds the request, another task of the event
    loop must get to run (the service waits for it, up to two seconds, before answering)."""

    def run(world: World) -> None:
        client = world.provider()
        method = getattr(client, f"get_{kind.lower()}_details_async")
        in_flight, loop_ran = threading.Event(), threading.Event()

        def hold(sender: Any, environ: dict[str, Any], **kwargs: Any) -> None:
            if environ.get("PATH_INFO", "").endswith(f"/evaluate/flags/{KEYS[kind]}"):
                in_flight.set()
                loop_ran.wait(2)

        async def other_work() -> None:
            while not in_flight.is_set():
                await asyncio.sleep(0.01)
            loop_ran.set()

        async def scenario() -> Any:
            other = asyncio.ensure_future(other_work())
            result = await method(KEYS[kind], typed(kind, FALLBACKS[kind]))
            other.cancel()
            return result

        request_started.connect(hold)
        try:
            result = asyncio.run(scenario())
        finally:
            request_started.disconnect(hold)
        assert in_flight.is_set()
        assert loop_ran.is_set(), "the event loop was held while the request was in flight"
        assert same(result.value, typed(kind, RESOLVED[kind])), result

    return run


def v2_cases() -> list[tuple[str, Step, str | None]]:
    cases: list[tuple[str, Step, str | None]] = []

    def outline(name: str, make: Callable[[str], tuple[Step, str | None]], kinds: tuple[str, ...] = TYPES) -> None:
        for kind in kinds:
            step, why = make(kind)
            cases.append((f"{name} | {kind}", step, why))

    outline("Resolve values", lambda k: (evaluated(k, KEYS[k], FALLBACKS[k] if k != "Object" else "{}",
                                                   value=RESOLVED[k]), None))
    outline("Resolves zero value", lambda k: (evaluated(k, f"{k.lower()}-zero-flag", ZERO_FALLBACKS[k],
                                                        value=ZEROS[k], reason="STATIC"), None))
    outline("Resolves zero value with targeting", lambda k: (
        evaluated(k, targeted(k), ZERO_FALLBACKS[k], context={"email": BALLMER}, value=ZEROS[k],
                  reason="TARGETING_MATCH"), None))
    outline("Resolves zero value with targeting using default", lambda k: (
        evaluated(k, targeted(k), ZERO_FALLBACKS[k], context={"email": "ballmer@none.com"}, value=ZEROS[k],
                  reason="DEFAULT"), NO_DEFAULT_REASON))
    outline("Flag not found error", lambda k: (
        evaluated(k, "non-existent-flag", FALLBACKS[k], value=FALLBACKS[k], reason="ERROR",
                  error="FLAG_NOT_FOUND"), None))
    outline("Type mismatch error", lambda k: (
        evaluated(k, MISMATCHED[k], FALLBACKS[k], value=FALLBACKS[k], reason="ERROR", error="TYPE_MISMATCH"),
        BOOL_IS_INT if k == "Integer" else None))
    outline("Provider not ready error", lambda k: (
        evaluated(k, KEYS[k], FALLBACKS[k], value=FALLBACKS[k], reason="ERROR", error="PROVIDER_NOT_READY",
                  state="not ready"), NO_PROVIDER_STATES))
    outline("Provider in fatal state error", lambda k: (
        evaluated(k, KEYS[k], FALLBACKS[k], value=FALLBACKS[k], reason="ERROR", error="PROVIDER_FATAL",
                  state="fatal"), NO_PROVIDER_STATES))
    outline("Complete evaluation details structure", lambda k: (
        evaluated(k, KEYS[k], FALLBACKS[k] if k != "Object" else "{}", value=RESOLVED[k], flag_key=True,
                  variant=VARIANTS[k], reason="STATIC"), None))
    cases.append(("Flag metadata in evaluation details", metadata_step, None))
    outline("Empty evaluation context", lambda k: (
        evaluated(k, targeted(k), TARGETED_FALLBACKS[k], value=ZEROS[k], reason="DEFAULT"), NO_DEFAULT_REASON))
    outline("Null context values", lambda k: (
        evaluated(k, targeted(k), TARGETED_FALLBACKS[k], context={"email": None}, value=ZEROS[k],
                  reason="DEFAULT"), NO_DEFAULT_REASON))
    cases.append(("Multiple context attributes targeting", multiple_attributes, None))
    cases.append(("Structure flag evaluation",
                  evaluated("Object", "object-flag", "{}", value=RESOLVED["Object"], reason="STATIC"), None))
    outline("Variant field population", lambda k: (
        evaluated(k, KEYS[k], FALLBACKS[k] if k != "Object" else "{}", variant=VARIANTS[k]), None))
    outline("CACHED reason", lambda k: (cached(k, KEYS[k], FALLBACKS[k]), NO_CACHED_REASON),
            kinds=("Boolean", "String"))
    outline("DISABLED reason", lambda k: (
        evaluated(k, f"{k.lower()}-disabled-flag", FALLBACKS[k], value=FALLBACKS[k], reason="DISABLED"),
        DISABLED_SERVES_OFF if k == "Object" else None))
    for state in STATUSES:
        cases.append((f"Provider status accessibility | {state}", status(state),
                      None if state == "stable" else NO_PROVIDER_STATES))
    cases.append(("Evaluation options with hooks", hooks_in_options, None))
    cases.append(("Evaluation context immutability", context_immutability, MUTABLE_DETAILS))
    outline("Asynchronous flag evaluation", lambda k: (asynchronous(k), ASYNC_BLOCKS))
    return cases


def _params() -> list[Any]:
    params = []
    for suite, cases in (("evaluation", EVALUATION), ("evaluation_v2", v2_cases())):
        for name, step, why in cases:
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            params.append(pytest.param(step, id=f"{suite} | {name}", marks=marks))
    return params


SCENARIOS = _params()


def test_scenario_count() -> None:
    """13 scenarios in ``evaluation.feature``, 82 in ``evaluation_v2.feature`` with its outlines
    expanded."""
    ids = [param.id for param in SCENARIOS]
    assert len(set(ids)) == len(ids)
    assert sum(i.startswith("evaluation | ") for i in ids) == 13
    assert sum(i.startswith("evaluation_v2 | ") for i in ids) == 82


@pytest.fixture
def world(service: Service, request: pytest.FixtureRequest) -> Iterator[World]:
    domain = f"scenario-{request.node.callspec.id}"
    yield World(service=service, domain=domain)
    api.clear_providers()


@pytest.mark.parametrize("step", SCENARIOS)
def test_openfeature_scenario(step: Step, world: World, db: Any) -> None:
    step(world)
