"""A small world with one or more objects of every kind the admin and the API manage, the
read-only role, and a fingerprint of every table they show, to prove that a refused request
changed nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Model
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import services as alert_services
from audit.models import AuditEntry
from audit.types import Actor
from base import roles, tokens
from base.change_requests import environment_review_set
from base.models import ApiToken, ChangeRequest, Environment
from base.reviews import ChangeRequested
from experiments import growth, project
from experiments import services as experiment_services
from experiments.holdout_analyses import holdout_analysis_create
from experiments.models import Experiment, Metric
from flags import attributes as flag_attributes
from flags import ramps
from flags import services as flag_services
from flags.models import Flag, Rule, Segment
from guarded import services as guarded_services
from tests.integration.pages import factories
from traffic import services as traffic_services

ACTOR = Actor(label="roles-tests", via="system")


def read_only_user(username: str = "viewer") -> User:
    """The read-only role: staff with every `view_*` model permission and nothing else."""
    user = User.objects.create_user(username, f"{username}@example.com", "pw-viewer-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


def token_client(user: User, scope: str = ApiToken.Scope.WRITE) -> APIClient:
    _, raw = tokens.api_token_create(actor=ACTOR, user=user, name=f"{user.username} {scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@dataclass(frozen=True)
class World:
    environment: Environment
    flag: Flag
    rule: Rule
    segment: Segment
    draft: Experiment
    running: Experiment
    ramp_id: str
    change_request: ChangeRequest


def build_world() -> World:
    env = factories.environment("production")
    factories.environment("staging")
    running = factories.seed(factories.flat_plan("walk-running", history=2, slices={}))
    draft = factories.create_experiment(factories.flat_plan("walk-draft", slices={}), start=False)
    flag = flag_services.flag_create(actor=ACTOR, key="walk-flag", tags=["walk"])
    flag_services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)
    rule = flag_services.flag_rule_create(actor=ACTOR, flag=flag, environment=env, kind="rollout", variant="on",
                                          coverage=0.5)
    flag_services.flag_rule_create(actor=ACTOR, flag=flag, environment=env, kind="force", variant="off",
                                   condition={"country": "DE"})
    steps = ramps.ramp_plan(start=timezone.now() - timedelta(hours=30), interval=timedelta(days=1))
    ramp = ramps.ramp_create(actor=ACTOR, flag=flag, environment=env, variant="on", steps=steps)
    guarded_rule = flag_services.flag_rule_create(actor=ACTOR, flag=flag, environment=env, kind="rollout",
                                                  variant="on", coverage=0.0)
    guarded_services.guarded_rollout_start(actor=ACTOR, flag=flag, environment=env, rule_id=guarded_rule.uid,
                                           steps=[{"percent": 10, "min_duration_seconds": 3600}, {"percent": 100}],
                                           guardrails=[{"metric": "signup"}])
    segment = flag_services.segment_create(actor=ACTOR, key="walk-segment", condition={"plan": "pro"})
    flag_attributes.attribute_create(actor=ACTOR, name="plan", allowed_values=["free", "pro"])
    archived = experiment_services.metric_create(actor=ACTOR, key="walk-archived", kind="count", event_name="x")
    experiment_services.metric_archive(actor=ACTOR, metric=archived, archived=True)
    flag_services.flag_archive(actor=ACTOR, flag=flag_services.flag_create(actor=ACTOR, key="walk-archived"),
                               archived=True)
    traffic_services.layer_create(actor=ACTOR, key="walk-layer")
    walk_holdout = traffic_services.holdout_create(actor=ACTOR, key="walk-holdout", share=0.05)
    holdout_analysis_create(actor=ACTOR, holdout=walk_holdout, environment=env, metrics=[
        {"metric": Metric.objects.filter(archived_at__isnull=True).values_list("key", flat=True).first()}])
    project.project_settings_update(actor=ACTOR, stats_engine_default="frequentist")
    growth.north_star_set(actor=ACTOR, metric="signup")
    experiment_services.data_source_create(
        actor=ACTOR, key="walk-source", engine="duckdb", connection={"path": "/nowhere/walk.duckdb"},
        exposure_query="SELECT u AS unit_id, t AS timestamp, e AS experiment, v AS variation FROM x",
        event_query="SELECT u AS unit_id, t AS timestamp, n AS name, v AS value FROM y")
    boss = User.objects.create_superuser("walk-boss", "boss@example.com", "pw-boss-123")
    tokens.api_token_create(actor=ACTOR, user=boss, name="walk token", scope=ApiToken.Scope.WRITE)
    Group.objects.create(name="walkers")
    alert_services.webhook_create(actor=ACTOR, name="walk-hook", url="https://hooks.example.com/walk")
    alert_services.webhooks_dispatch()  # deliveries of the changes above (never sent here)
    editor = User.objects.create_user("walk-editor", "editor@example.com", "pw-editor-123", is_staff=True)
    roles.environment_role_grant(actor=ACTOR, environment=env, user=editor, role="editor")
    fields = {"user_agent": "walker", "ip_address": "10.0.0.1", "username": "someone", "http_accept": "*/*",
              "path_info": "/admin/login/"}
    AccessAttempt.objects.create(**fields, get_data="", post_data="", failures_since_start=1)
    AccessLog.objects.create(**fields)
    AccessFailureLog.objects.create(**fields)
    return World(environment=env, flag=flag, rule=rule, segment=segment, draft=draft, running=running,
                 ramp_id=ramp.id, change_request=_open_change_request(flag))


def _open_change_request(flag: Flag) -> ChangeRequest:
    """A change request awaiting review in staging (which is reviewed only while it is proposed)."""
    staging = Environment.objects.get(key="staging")
    proposer = User.objects.create_user("walk-proposer", "proposer@example.com", "pw-proposer-123", is_staff=True)
    environment_review_set(actor=ACTOR, environment=staging, requires_review=True)
    try:
        flag_services.flag_state_update(actor=Actor(label=proposer.username, user_id=proposer.pk, via="api"),
                                        flag=flag, environment=staging, default_variant="on")
    except ChangeRequested as proposed:
        change_request = proposed.change_request
    environment_review_set(actor=ACTOR, environment=staging, requires_review=False)
    return change_request


def fingerprint() -> dict[str, Any]:
    """Every row of every model the admin shows, plus the audit log and the readouts."""
    models: set[type[Model]] = set(admin.site._registry)
    state: dict[str, Any] = {}
    for model in sorted(models, key=lambda m: m._meta.label):
        rows = model._default_manager.order_by("pk").values()
        # Signing in and using a token stamp these; they are no change of configuration.
        state[model._meta.label] = [
            {k: v for k, v in row.items() if k not in ("last_login", "last_used_at")} for row in rows
        ]
    state["audit"] = AuditEntry.objects.count()
    return state
