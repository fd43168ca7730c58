"""The management API of holdouts: list and read them with their latest readout results, ask
for a readout now, and end one (`experiments.holdouts.holdout_end`: audited, through the review
gate where the environments it changes require review).

Roles: reading takes `holdout.view`, asking for a readout and ending take `holdout.change`
(`base.permissions`, checked by `base.authentication.HasManagementScope` from each view's
`required_actions`); a readout asked for in one environment is checked against it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from base.authentication import request_actor
from base.models import Environment
from base.permissions import Action
from config.api import ListApi, validated_input
from config.errors import NotFound, ValidationFailed
from experiments.holdout_documents import holdout_api_document, holdout_list, holdout_snapshot_document
from experiments.holdout_readout import holdout_refresh
from experiments.holdouts import holdout_end
from experiments.models import HoldoutAnalysis, ResultSnapshot
from traffic.models import Holdout

HOLDOUT_STATUSES = ["active", "ended"]
SNAPSHOT_STATUSES = ["queued", "running", "success", "failed", "skipped"]


def _holdout(key: str) -> Holdout:
    found = Holdout.objects.filter(key=key).first()
    if found is None:
        raise NotFound(f"Holdout '{key}' does not exist.")
    return found


@extend_schema_serializer(component_name="HoldoutComparison")
class ComparisonOutput(serializers.Serializer[Any]):
    variation = serializers.CharField(help_text="`released`: everyone else, compared with the held-out units.")
    difference_type = serializers.ChoiceField(choices=["relative", "absolute"])
    estimate = serializers.FloatField(allow_null=True, help_text="The lift (posterior mean with the Bayesian engine).")
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Frequentist analyses.")
    chance_to_win = serializers.FloatField(allow_null=True, help_text="Bayesian analyses.")
    risk = serializers.ListField(child=serializers.FloatField(), allow_null=True,
                                 help_text="Bayesian: [risk of keeping the held-out experience, risk of releasing].")
    significant = serializers.BooleanField(allow_null=True)
    error = serializers.CharField(allow_null=True)


@extend_schema_serializer(component_name="HoldoutArm")
class ArmOutput(serializers.Serializer[Any]):
    variation = serializers.ChoiceField(choices=["held-out", "released"])
    units = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)


@extend_schema_serializer(component_name="HoldoutMetricResult")
class MetricResultOutput(serializers.Serializer[Any]):
    metric = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    direction = serializers.CharField()
    analysis = serializers.CharField(
        help_text="The analysis of the headline comparisons (fixed, cuped, sequential...).")
    arms = ArmOutput(many=True)
    comparisons = ComparisonOutput(many=True)
    error = serializers.CharField(allow_null=True)


@extend_schema_serializer(component_name="HoldoutReadoutRun")
class SnapshotOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=SNAPSHOT_STATUSES)
    trigger = serializers.CharField()
    requested_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    analysis_end = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField()
    units = serializers.IntegerField(allow_null=True)
    error_code = serializers.CharField()
    error = serializers.CharField()
    srm_p_value = serializers.FloatField(allow_null=True, required=False)
    metrics = MetricResultOutput(many=True, required=False)


@extend_schema_serializer(component_name="HoldoutReadout")
class ReadoutOutput(serializers.Serializer[Any]):
    holdout = serializers.CharField()
    environment = serializers.CharField()
    metrics = serializers.JSONField(help_text="[{metric, role}]")
    alpha = serializers.FloatField()
    difference_type = serializers.CharField()
    sequential = serializers.BooleanField()
    cuped = serializers.BooleanField()
    cuped_lookback_days = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    latest = SnapshotOutput(allow_null=True, help_text="The newest run, whatever its status (without results).")
    latest_success = SnapshotOutput(allow_null=True, help_text="The newest successful run, with its results.")
    pending = serializers.BooleanField(help_text="A run is queued or running.")


@extend_schema_serializer(component_name="HoldoutExperiment")
class ExperimentRefOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    environment = serializers.CharField()
    status = serializers.CharField()
    decision = serializers.CharField()
    shipped_variation = serializers.CharField()


@extend_schema_serializer(component_name="Holdout")
class HoldoutOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    share = serializers.FloatField()
    hash_attribute = serializers.CharField()
    seed = serializers.CharField()
    status = serializers.ChoiceField(choices=HOLDOUT_STATUSES)
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    held_flags = serializers.ListField(
        child=serializers.CharField(),
        help_text="flag@environment names whose force rule keeps the held-out units on the value from before.")
    experiments = ExperimentRefOutput(many=True)
    readouts = ReadoutOutput(many=True)


class HoldoutListApi(ListApi):
    required_actions = {"GET": Action.HOLDOUT_VIEW}

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=HOLDOUT_STATUSES),
                               OpenApiParameter("search", str)],
                   responses=HoldoutOutput(many=True))
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in HOLDOUT_STATUSES:
            raise ValidationFailed("status must be active or ended.", details={"status": ["Unknown status."]})
        search = request.query_params.get("search")
        if search is not None and len(search) > 200:
            raise ValidationFailed("search is at most 200 characters.", details={"search": ["Too long."]})
        holdouts = holdout_list(status=wanted, search=search)
        return self.page_response(request, holdouts, lambda page: [holdout_api_document(h) for h in page])


class HoldoutDetailApi(APIView):
    required_actions = {"GET": Action.HOLDOUT_VIEW}

    @extend_schema(responses=HoldoutOutput)
    def get(self, request: Request, key: str) -> Response:
        return Response(holdout_api_document(_holdout(key)))


class HoldoutRefreshApi(APIView):
    """Queue a readout of the holdout now, in one environment or in every one it is read out in;
    poll the holdout for the results."""

    required_actions = {"POST": Action.HOLDOUT_CHANGE}

    @extend_schema_serializer(component_name="HoldoutRefresh")
    class InputSerializer(serializers.Serializer[Any]):
        environment = serializers.CharField(max_length=64, required=False,
                                            help_text="An environment key; default: every one it is read out in.")

    @extend_schema_serializer(component_name="HoldoutRefreshQueued")
    class OutputSerializer(serializers.Serializer[Any]):
        queued = SnapshotOutput(many=True)

    kwargs: dict[str, Any]

    def permission_environment(self) -> Environment | None:
        data = self.request.data
        key = data.get("environment") if isinstance(data, dict) else None
        if not isinstance(key, str):
            return None
        return Environment.objects.filter(key=key).first()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request)
        holdout = _holdout(key)
        analyses = HoldoutAnalysis.objects.filter(holdout=holdout).select_related("environment")
        if "environment" in data:
            analyses = analyses.filter(environment__key=data["environment"])
            if not analyses.exists():
                raise NotFound(f"Holdout '{key}' is not read out in environment '{data['environment']}'.")
        elif not analyses.exists():
            raise NotFound(f"Holdout '{key}' is not read out anywhere: configure its readout first.")
        actor = request_actor(request)
        with transaction.atomic():
            queued = [holdout_refresh(analysis=a, trigger=ResultSnapshot.Trigger.API, requested_by=actor.label)
                      for a in analyses]
        return Response({"queued": [holdout_snapshot_document(s, results=False) for s in queued]},
                        status=status.HTTP_202_ACCEPTED)


class HoldoutEndApi(APIView):
    """End the holdout: its units get the shipped experiences from now on (audited). In an
    environment that requires review the answer is 202 with the change request."""

    required_actions = {"POST": Action.HOLDOUT_CHANGE}

    @extend_schema(request=None, responses={200: HoldoutOutput})
    def post(self, request: Request, key: str) -> Response:
        holdout = holdout_end(actor=request_actor(request), holdout=_holdout(key))
        return Response(holdout_api_document(holdout))
