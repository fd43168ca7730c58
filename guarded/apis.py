"""Management API of guarded rollouts: start one on a flag's rollout rule in an environment, list
them with their decisions, pause, resume or roll back."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from base.authentication import request_actor
from base.models import Environment
from base.permissions import Action
from config.api import validated_input
from config.errors import NotFound
from flags import selectors as flag_selectors
from guarded import services
from guarded.checks import MAX_GUARDRAILS, MAX_STEPS
from guarded.documents import decision_document, rollout_document
from guarded.models import GuardedRollout


class _Scoped:
    kwargs: dict[str, Any]

    def permission_environment(self) -> Environment:
        return flag_selectors.environment_get(key=self.kwargs["env"])


def _rollout(key: str, env: str, rollout_id: int) -> GuardedRollout:
    rollout = GuardedRollout.objects.select_related("flag", "environment", "experiment").filter(
        pk=rollout_id, flag__key=key, environment__key=env).first()
    if rollout is None:
        raise NotFound(f"Guarded rollout {rollout_id} of '{key}' in {env} does not exist.", code="rollout_not_found")
    return rollout


def _full(rollout: GuardedRollout) -> dict[str, Any]:
    return {**rollout_document(rollout),
            "decisions": [decision_document(d) for d in rollout.decisions.order_by("at", "id")]}


class StepSerializer(serializers.Serializer[Any]):
    percent = serializers.FloatField(help_text="Above 0, at most 100; rising; the last step is 100.")
    min_duration_seconds = serializers.IntegerField(required=False, help_text="1 s to 90 days (not for 100%).")


class GuardrailSerializer(serializers.Serializer[Any]):
    metric = serializers.CharField(max_length=100)
    direction = serializers.ChoiceField(choices=["higher", "lower"], required=False,
                                        help_text="What is good for the metric; the catalog's by default.")
    threshold = serializers.FloatField(required=False, allow_null=True,
                                       help_text="Relative change tolerated (0 to 1; 0.02 is 2%); none by default.")


class NextStepOutput(serializers.Serializer[Any]):
    percent = serializers.FloatField()
    earliest_at = serializers.DateTimeField()


class GuardedRolloutOutput(serializers.Serializer[Any]):
    """The shape of `rollout_document` (the schema's; the document is built by it)."""

    id = serializers.IntegerField()
    flag = serializers.CharField()
    environment = serializers.CharField()
    rule_id = serializers.CharField()
    variant = serializers.CharField()
    control_variant = serializers.CharField()
    experiment = serializers.CharField()
    status = serializers.CharField(help_text="running, paused, completed, rolled_back or cancelled.")
    percent = serializers.FloatField()
    step = serializers.IntegerField()
    step_started_at = serializers.DateTimeField()
    next_step = NextStepOutput(allow_null=True, help_text="None when no step follows or the rollout is not running.")
    steps = serializers.ListField(child=serializers.DictField())
    guardrails = serializers.ListField(child=serializers.DictField())
    on_harm = serializers.CharField(help_text="rollback or pause.")
    alpha = serializers.FloatField()
    min_units = serializers.IntegerField()
    reason = serializers.CharField(allow_blank=True)
    created_by = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class GuardDecisionOutput(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    action = serializers.CharField()
    step = serializers.IntegerField()
    percent = serializers.FloatField()
    actor = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    snapshot = serializers.IntegerField(allow_null=True)
    details = serializers.DictField()


class GuardedRolloutDetailOutput(GuardedRolloutOutput):
    decisions = GuardDecisionOutput(many=True)


class GuardedRolloutListApi(_Scoped, APIView):
    required_actions = {"GET": Action.FLAG_VIEW, "POST": Action.FLAG_RAMP}

    class InputSerializer(serializers.Serializer[Any]):
        rule_id = serializers.CharField(max_length=40)
        steps = serializers.ListField(child=StepSerializer(), max_length=MAX_STEPS)
        guardrails = serializers.ListField(child=GuardrailSerializer(), max_length=MAX_GUARDRAILS)
        on_harm = serializers.ChoiceField(choices=["rollback", "pause"], required=False, default="rollback")
        alpha = serializers.FloatField(required=False, default=0.05)
        min_units = serializers.IntegerField(required=False, default=500)

    @extend_schema(responses=GuardedRolloutOutput(many=True))
    def get(self, request: Request, key: str, env: str) -> Response:
        rollouts = GuardedRollout.objects.select_related("flag", "environment", "experiment").filter(
            flag__key=key, environment__key=env)
        return Response([rollout_document(r) for r in rollouts])

    @extend_schema(request=InputSerializer, responses={201: GuardedRolloutDetailOutput})
    def post(self, request: Request, key: str, env: str) -> Response:
        data = validated_input(self.InputSerializer, request)
        rollout = services.guarded_rollout_start(
            actor=request_actor(request), flag=flag_selectors.flag_get(key=key),
            environment=flag_selectors.environment_get(key=env), rule_id=data["rule_id"],
            steps=[dict(s) for s in data["steps"]], guardrails=[dict(g) for g in data["guardrails"]],
            on_harm=data["on_harm"], alpha=data["alpha"], min_units=data["min_units"],
        )
        return Response(_full(rollout), status=status.HTTP_201_CREATED)


class GuardedRolloutDetailApi(_Scoped, APIView):
    required_actions = {"GET": Action.FLAG_VIEW}

    @extend_schema(responses=GuardedRolloutDetailOutput)
    def get(self, request: Request, key: str, env: str, rollout_id: int) -> Response:
        return Response(_full(_rollout(key, env, rollout_id)))


class GuardedRolloutActionApi(_Scoped, APIView):
    required_actions = {"POST": Action.FLAG_RAMP}
    operation = ""

    class InputSerializer(serializers.Serializer[Any]):
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=GuardedRolloutDetailOutput)
    def post(self, request: Request, key: str, env: str, rollout_id: int) -> Response:
        data = validated_input(self.InputSerializer, request)
        rollout = _rollout(key, env, rollout_id)
        actor = request_actor(request)
        if self.operation == "pause":
            rollout = services.guarded_rollout_pause(actor=actor, rollout=rollout, reason=data["reason"])
        elif self.operation == "resume":
            rollout = services.guarded_rollout_resume(actor=actor, rollout=rollout)
        else:
            rollout = services.guarded_rollout_rollback(actor=actor, rollout=rollout, reason=data["reason"])
        return Response(_full(rollout))
