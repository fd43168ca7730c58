"""Demo configuration: environments, segments and a handful of realistic flags.

Used by `manage.py seed_demo`; every step goes through the services and is idempotent.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from audit.types import Actor
from base import tokens
from base.models import ApiToken, Environment
from flags import services
from flags.models import Flag, Segment

ACTOR = Actor(label="seed_demo", via="command")
ENVIRONMENTS = (("production", "Production"), ("staging", "Staging"))
DEMO_TOKEN_NAME = "demo token"  # noqa: S105 - a label, not a secret

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
)


def _ensure_environments() -> list[Environment]:
    envs = []
    for key, name in ENVIRONMENTS:
        env = Environment.objects.filter(key=key).first() or services.environment_create(
            actor=ACTOR, key=key, name=name
        )
        envs.append(env)
    return envs


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
}
ENABLED = {"maintenance-mode": (True, True), "new-checkout": (True, True), "pricing-page": (True, True),
           "checkout-upsell": (True, True), "max-upload-mb": (True, True), "search-ranking": (True, False)}


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


def _ensure_flags(envs: list[Environment]) -> None:
    for spec in FLAGS:
        if Flag.objects.filter(key=spec["key"]).exists():
            continue
        flag = services.flag_create(actor=ACTOR, **spec)
        for env in envs:
            _configure(flag, env)


def _ensure_admin() -> tuple[Any, str]:
    user_model = get_user_model()
    password = secrets.token_urlsafe(12)
    user = user_model.objects.filter(username="admin").first()
    if user is None:
        user = user_model.objects.create_superuser("admin", "admin@example.com", password)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, password


def _fresh_token(user: Any) -> str:
    for token in ApiToken.objects.filter(name=DEMO_TOKEN_NAME, revoked_at__isnull=True):
        tokens.api_token_revoke(actor=ACTOR, token=token)
    _, raw = tokens.api_token_create(actor=ACTOR, user=user, name=DEMO_TOKEN_NAME, scope=ApiToken.Scope.WRITE)
    return raw


@transaction.atomic
def seed_demo() -> dict[str, Any]:
    """Create what is missing and return the keys, a fresh admin password and a fresh token."""
    envs = _ensure_environments()
    _ensure_segments()
    _ensure_flags(envs)
    user, password = _ensure_admin()
    token = _fresh_token(user)
    return {
        "environments": {
            e.key: {"client_key": e.client_key, "server_key": e.server_key} for e in Environment.objects.all()
        },
        "admin": {"username": user.get_username(), "password": password},
        "management_token": token,
    }
