"""Demo configuration: environments, attribute definitions, segments, a handful of realistic
flags and when the simulated applications last evaluated them.

Used by `manage.py seed_demo`; every step goes through the services and is idempotent.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from flags import attributes, services
from flags.demo_credentials import DemoLogin, demo_login_ensure, demo_login_read, demo_login_write
from flags.models import AttributeDefinition, Flag, Segment
from flags.selectors import flag_usage_by_environment
from flags.staleness import stale_flag_days
from flags.usage import flag_usage_record

ACTOR = Actor(label="seed_demo", via="command")
ENVIRONMENTS = (("production", "Production"), ("staging", "Staging"))

# The context attributes the demo applications send, for the condition builder.
ATTRIBUTES: tuple[dict[str, Any], ...] = (
    {"name": "id", "description": "The user's id (the OFREP targetingKey)."},
    {"name": "country", "allowed_values": ["AT", "BE", "BR", "DE", "ES", "FR", "GB", "IE", "IT", "NL", "PL", "SE",
                                           "US"],
     "description": "ISO country code of the user."},
    {"name": "plan", "allowed_values": ["free", "pro", "business"], "description": "The customer's plan."},
    {"name": "platform", "allowed_values": ["ios", "android", "web"], "description": "Where the app runs."},
    {"name": "visitor", "allowed_values": ["new", "returning"], "description": "First visit or a later one."},
    {"name": "email", "description": "The user's e-mail address."},
    {"name": "app_version", "type": "semver", "description": "Version of the mobile app."},
)

SEGMENTS: tuple[dict[str, Any], ...] = (
    {
        "key": "beta-testers",
        "name": "Beta testers",
        "kind": "ids",
        "attribute": "id",
        "ids": ["user-1", "user-2", "user-3", "user-42"],
        "description": "Users who opted into betas.",
    },
    {
        "key": "eu-customers",
        "name": "EU customers",
        "kind": "condition",
        "condition": {"country": {"$in": ["AT", "BE", "DE", "ES", "FR", "IE", "IT", "NL", "PL", "SE"]}},
    },
    {
        "key": "internal",
        "name": "Employees",
        "kind": "condition",
        "condition": {"email": {"$regex": "@example\\.com$"}},
    },
)

FLAGS: tuple[dict[str, Any], ...] = (
    {
        "key": "maintenance-mode",
        "name": "Maintenance mode",
        "owner": "platform",
        "description": "Kill switch: shows the maintenance page and stops writes.",
        "lifecycle": "permanent",
        "tags": ["ops", "kill-switch"],
    },
    {
        "key": "new-checkout",
        "name": "New checkout",
        "owner": "growth",
        "description": "One-page checkout, rolled out to 10% of users.",
        "tags": ["checkout"],
    },
    {
        "key": "pricing-page",
        "name": "Pricing page layout",
        "owner": "growth",
        "value_type": "json",
        "description": "Layout and call to action of the pricing page.",
        "tags": ["pricing"],
        "variants": [
            {"key": "classic", "name": "Classic", "value": {"layout": "classic", "cta": "Start free trial"}},
            {"key": "compact", "name": "Compact", "value": {"layout": "compact", "cta": "Try it free"}},
            {
                "key": "annual-first",
                "name": "Annual first",
                "value": {"layout": "classic", "cta": "Save 20% yearly", "default_billing": "annual"},
            },
        ],
    },
    {
        "key": "checkout-upsell",
        "name": "Upsell in checkout",
        "owner": "growth",
        "description": "Offers an add-on in the new checkout; needs new-checkout.",
        "tags": ["checkout"],
        "prerequisites": [{"flag": "new-checkout", "condition": {"value": True}}],
    },
    {
        "key": "search-ranking",
        "name": "Search ranking model",
        "owner": "search",
        "value_type": "string",
        "variants": [{"key": "bm25", "value": "bm25"}, {"key": "semantic", "value": "semantic"}],
        "description": "Ranking model behind site search.",
        "tags": ["search"],
    },
    {
        "key": "max-upload-mb",
        "name": "Upload limit (MB)",
        "owner": "platform",
        "value_type": "number",
        "variants": [{"key": "standard", "value": 25}, {"key": "large", "value": 100}],
        "lifecycle": "permanent",
        "description": "Largest file a user may upload.",
        "tags": ["limits"],
    },
    {
        "key": "spring-sale-banner",
        "name": "Spring sale banner",
        "owner": "marketing",
        "description": "Banner of the spring sale, shown to everyone while the sale ran.",
        "tags": ["marketing"],
    },
)
# A temporary flag whose code was removed after its launch: nothing has evaluated it for longer
# than the stale-flag horizon, so `/flags/?stale=1` lists it.
FINISHED_FLAG = "spring-sale-banner"


def _ensure_environments() -> list[Environment]:
    envs = []
    for key, name in ENVIRONMENTS:
        env = Environment.objects.filter(key=key).first() or services.environment_create(
            actor=ACTOR, key=key, name=name
        )
        envs.append(env)
    return envs


def _ensure_attributes() -> None:
    for spec in ATTRIBUTES:
        if not AttributeDefinition.objects.filter(name=spec["name"]).exists():
            attributes.attribute_create(actor=ACTOR, **spec)


def _ensure_segments() -> None:
    for spec in SEGMENTS:
        if not Segment.objects.filter(key=spec["key"]).exists():
            services.segment_create(actor=ACTOR, **spec)


# Per flag: its rules in every environment (a coverage given as (production, staging)) and
# whether it is on in production and in staging.
RULES: dict[str, list[dict[str, Any]]] = {
    "new-checkout": [
        {"kind": "force", "variant": "on", "segments": ["internal"], "description": "Employees always see it"},
        {"kind": "rollout", "variant": "on", "coverage": (0.10, 0.5), "description": "Gradual rollout"},
    ],
    "pricing-page": [
        {"kind": "force", "variant": "annual-first",
         "condition": {"country": {"$in": ["DE", "FR", "NL"]}, "plan": {"$in": ["pro", "business"]}},
         "description": "EU pro plans see annual billing first"},
        {"kind": "force", "variant": "compact", "segments": ["beta-testers"],
         "description": "Beta testers get the compact page"},
    ],
    "checkout-upsell": [
        {"kind": "rollout", "variant": "on", "coverage": 0.5, "description": "Half of the new-checkout users"},
    ],
    "max-upload-mb": [
        {"kind": "force", "variant": "large", "condition": {"plan": "business"}, "description": "Business plan"},
    ],
    "spring-sale-banner": [
        {"kind": "rollout", "variant": "on", "coverage": 1.0, "description": "Everyone during the sale"},
    ],
}
ENABLED = {"maintenance-mode": (True, True), "new-checkout": (True, True), "pricing-page": (True, True),
           "checkout-upsell": (True, True), "max-upload-mb": (True, True), "search-ranking": (True, False),
           "spring-sale-banner": (True, True)}

# The simulated applications' last evaluation of each flag, as (production, staging) ages at
# seeding time; None: never evaluated there. Production asks for its flags all the time, staging
# only when someone tests, so the staging times spread over the last two weeks.
LAST_EVALUATED: dict[str, tuple[timedelta | None, timedelta | None]] = {
    "maintenance-mode": (timedelta(minutes=1), timedelta(hours=3)),
    "new-checkout": (timedelta(minutes=1), timedelta(hours=5)),
    "pricing-page": (timedelta(minutes=4), timedelta(days=2, hours=6)),
    "checkout-upsell": (timedelta(minutes=2), timedelta(days=6)),
    "search-ranking": (timedelta(minutes=9), None),
    "max-upload-mb": (timedelta(hours=2), timedelta(days=11)),
}


def _configure(flag: Flag, env: Environment) -> None:
    """Per-environment state and rules of each demo flag."""
    production = env.key == "production"
    for rule in RULES.get(flag.key, []):
        fields = dict(rule)
        if isinstance(fields.get("coverage"), tuple):
            fields["coverage"] = fields["coverage"][0 if production else 1]
        services.flag_rule_create(actor=ACTOR, flag=flag, environment=env, **fields)
    if flag.key in ENABLED:
        enabled = ENABLED[flag.key][0 if production else 1]
        services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=enabled)


def _finished_ages() -> tuple[timedelta, timedelta]:
    """How long ago the finished flag was created and last evaluated: past the stale-flag
    horizon, whatever `STALE_FLAG_DAYS` says."""
    horizon = stale_flag_days()
    return timedelta(days=horizon + 60), timedelta(days=horizon + 12)


def _ensure_flags(envs: list[Environment]) -> None:
    for spec in FLAGS:
        if Flag.objects.filter(key=spec["key"]).exists():
            continue
        flag = services.flag_create(actor=ACTOR, **spec)
        for env in envs:
            _configure(flag, env)
        if flag.key == FINISHED_FLAG:
            # Its story began before the seeding: created before it was last evaluated.
            Flag.objects.filter(pk=flag.pk).update(created_at=timezone.now() - _finished_ages()[0])


def _ensure_evaluations(envs: list[Environment]) -> None:
    """Record the simulated evaluations where a demo flag has none in an environment yet, in
    the table the SDK edge writes; later real evaluations move the times forward."""
    now = timezone.now()
    finished = _finished_ages()[1]
    ages = {**LAST_EVALUATED, FINISHED_FLAG: (finished, finished)}
    flags = dict(Flag.objects.filter(key__in=list(ages)).values_list("key", "pk"))
    recorded = flag_usage_by_environment(flag_ids=flags.values())
    for env in envs:
        production = env.key == "production"
        evaluated = {
            key: now - age
            for key, pair in ages.items()
            if key in flags
            and (age := pair[0 if production else 1]) is not None
            and env.key not in recorded.get(flags[key], {})
        }
        flag_usage_record(environment=env, evaluated=evaluated)


@transaction.atomic
def _seed(stored: DemoLogin | None, *, rotate_credentials: bool) -> tuple[DemoLogin, dict[str, Any]]:
    envs = _ensure_environments()
    _ensure_attributes()
    _ensure_segments()
    _ensure_flags(envs)
    _ensure_evaluations(envs)
    login = demo_login_ensure(actor=ACTOR, stored=stored, rotate=rotate_credentials)
    keys = {e.key: {"client_key": e.client_key, "server_key": e.server_key} for e in Environment.objects.all()}
    return login, keys


def seed_demo(*, credentials_file: Path, rotate_credentials: bool = False) -> dict[str, Any]:
    """Create what is missing and return the SDK keys, the admin login and a management token.

    The login and token are kept in `credentials_file` and reused while they still work;
    `rotate_credentials` replaces them (the old token is revoked).
    """
    login, keys = _seed(demo_login_read(credentials_file), rotate_credentials=rotate_credentials)
    # Written once the database holds them: a failed seeding leaves the file as it was.
    demo_login_write(credentials_file, login)
    return {"environments": keys, **login.as_json()}
