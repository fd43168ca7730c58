"""REST APIs of the experiments app: validate input, call one service or selector, serialize.

`POST /api/v1/events` is an SDK endpoint (client or server key); every other endpoint is the
management API (bearer token with read or write scope, or a staff session).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_dataclasses.serializers import DataclassSerializer

from base.authentication import request_actor
from base.models import Environment
from base.permissions import Action
from config.api import ListApi, validated_input
from config.errors import ValidationFailed
from experiments import project, selectors, services
from experiments.checks import MAX_RAMP_STEPS, MAX_TIMEOUT_SECONDS
from experiments.data_sources import SourceReport
from experiments.documents import (
    ExperimentResults,
    SnapshotRecord,
    SnapshotRun,
    data_source_document,
    experiment_document,
    metric_document,
    ramp_document,
)
from experiments.models import MAX_METRIC_DAYS, Experiment, ExperimentMetric, Metric, RampStep, ResultSnapshot
from experiments.readout import Readout
from experiments.warehouse import ENGINES, MAX_QUERY_LENGTH
from flags import selectors as flag_selectors

# Metrics ---------------------------------------------------------------------------------

METRIC_KINDS = [c[0] for c in Metric.Kind.choices]


@extend_schema_serializer(component_name="Metric")
class ExperimentScoped:
    """An endpoint about one experiment: the experiment's environment decides the caller's role."""

    kwargs: dict[str, Any]

    def permission_environment(self) -> Environment:
        return selectors.experiment_get(key=self.kwargs["key"]).environment


class MetricOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.ChoiceField(choices=METRIC_KINDS)
    event_name = serializers.CharField()
    denominator_event = serializers.CharField()
    funnel_steps = serializers.ListField(child=serializers.CharField())
    retention_day = serializers.IntegerField(allow_null=True)
    ltv_day = serializers.IntegerField(allow_null=True)
    window_hours = serializers.IntegerField(allow_null=True)
    capping = serializers.CharField()
    capping_value = serializers.FloatField(allow_null=True)
    direction = serializers.CharField()
    owner = serializers.CharField()
    archived = serializers.BooleanField()


class _MetricFields(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=METRIC_KINDS)
    event_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    denominator_event = serializers.CharField(max_length=100, required=False, allow_blank=True)
    funnel_steps = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    retention_day = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                             max_value=MAX_METRIC_DAYS)
    ltv_day = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_METRIC_DAYS,
        help_text=f"LTV metrics: the day N (1 to {MAX_METRIC_DAYS}) up to which each unit's event values are summed.")
    window_hours = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=24 * MAX_METRIC_DAYS,
        help_text=f"Hours after the first exposure during which events count (1 to {24 * MAX_METRIC_DAYS}, "
                  f"{MAX_METRIC_DAYS} days); null: no limit. Not for LTV metrics, whose window is their day N.")
    capping = serializers.ChoiceField(choices=[c[0] for c in Metric.Capping.choices], required=False)
    capping_value = serializers.FloatField(required=False, allow_null=True)
    direction = serializers.ChoiceField(choices=[c[0] for c in Metric.Direction.choices], required=False)
    owner = serializers.CharField(max_length=150, required=False, allow_blank=True)


class MetricListApi(ListApi):
    required_actions = {"GET": Action.METRIC_VIEW, "POST": Action.METRIC_CREATE}

    @extend_schema_serializer(component_name="MetricCreate")
    class InputSerializer(_MetricFields):
        key = serializers.CharField(max_length=100)

    @extend_schema(
        parameters=[OpenApiParameter("archived", bool), OpenApiParameter("kind", str), OpenApiParameter("search", str)],
        responses=MetricOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        archived = params.get("archived", "false").lower() in ("1", "true", "yes")
        metrics = selectors.metric_list(archived=archived, kind=params.get("kind"), search=params.get("search"))
        return self.page_response(request, metrics, lambda page: [metric_document(m) for m in page])

    @extend_schema(request=InputSerializer, responses={201: MetricOutput})
    def post(self, request: Request) -> Response:
        data = validated_input(self.InputSerializer, request)
        metric = services.metric_create(actor=request_actor(request), **data)
        return Response(metric_document(metric), status=status.HTTP_201_CREATED)


class MetricDetailApi(APIView):
    required_actions = {"GET": Action.METRIC_VIEW, "PATCH": Action.METRIC_CHANGE}

    @extend_schema_serializer(component_name="MetricUpdate")
    class InputSerializer(_MetricFields):
        pass

    @extend_schema(responses=MetricOutput)
    def get(self, request: Request, key: str) -> Response:
        return Response(metric_document(selectors.metric_get(key=key)))

    @extend_schema(request=InputSerializer, responses=MetricOutput)
    def patch(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request, partial=True)
        metric = services.metric_update(actor=request_actor(request), metric=selectors.metric_get(key=key), **data)
        return Response(metric_document(metric))


class MetricArchiveApi(APIView):
    required_actions = {"POST": Action.METRIC_ARCHIVE}
    archived = True

    @extend_schema(request=None, responses=MetricOutput)
    def post(self, request: Request, key: str) -> Response:
        metric = services.metric_archive(
            actor=request_actor(request), metric=selectors.metric_get(key=key), archived=self.archived
        )
        return Response(metric_document(metric))


class MetricRestoreApi(MetricArchiveApi):
    archived = False


# Data sources ----------------------------------------------------------------------------

ENGINE_KEYS = list(ENGINES)


@extend_schema_serializer(component_name="DataSource")
class DataSourceOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    engine = serializers.ChoiceField(choices=ENGINE_KEYS)
    connection = serializers.JSONField(help_text="Engine settings; secrets only as environment variable names.")
    exposure_query = serializers.CharField()
    event_query = serializers.CharField()
    timeout_seconds = serializers.IntegerField()
    exposure_export_table = serializers.CharField()
    exposures_exported_until = serializers.DateTimeField(allow_null=True)
    experiments = serializers.ListField(child=serializers.CharField())


class _DataSourceFields(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=4000, required=False, allow_blank=True)
    engine = serializers.ChoiceField(choices=ENGINE_KEYS)
    connection = serializers.JSONField(
        required=False,
        help_text='Engine settings, e.g. {"path": "/data/events.duckdb"} or {"host": "db", "dbname": "dw", '
                  '"user": "reader", "password_env": "WAREHOUSE_PASSWORD"}. Secrets are never stored: name the '
                  "environment variable of the workers that holds each one (fields ending in _env).",
    )
    exposure_query = serializers.CharField(
        max_length=MAX_QUERY_LENGTH,
        help_text="One SELECT in the engine's dialect returning unit_id, timestamp, experiment, variation; "
                  "further columns are slice attributes.")
    event_query = serializers.CharField(
        max_length=MAX_QUERY_LENGTH, help_text="One SELECT in the engine's dialect returning unit_id, timestamp, "
                                               "name, value.")
    timeout_seconds = serializers.IntegerField(required=False, min_value=1, max_value=MAX_TIMEOUT_SECONDS)
    exposure_export_table = serializers.CharField(
        max_length=200, required=False, allow_blank=True,
        help_text="[schema.]table of the source that the served exposures of its experiments are appended to "
                  "on a schedule (created when missing; DuckDB and PostgreSQL); empty: no export.")


class DataSourceListApi(ListApi):
    required_actions = {"GET": Action.DATA_SOURCE_VIEW, "POST": Action.DATA_SOURCE_CREATE}

    @extend_schema_serializer(component_name="DataSourceCreate")
    class InputSerializer(_DataSourceFields):
        key = serializers.CharField(max_length=100)

    @extend_schema(parameters=[OpenApiParameter("engine", str), OpenApiParameter("search", str)],
                   responses=DataSourceOutput(many=True))
    def get(self, request: Request) -> Response:
        params = request.query_params
        sources = selectors.data_source_list(engine=params.get("engine"), search=params.get("search"))
        return self.page_response(request, sources, lambda page: [data_source_document(s) for s in page])

    @extend_schema(request=InputSerializer, responses={201: DataSourceOutput})
    def post(self, request: Request) -> Response:
        data = validated_input(self.InputSerializer, request)
        source = services.data_source_create(actor=request_actor(request), **data)
        return Response(data_source_document(source), status=status.HTTP_201_CREATED)


class DataSourceDetailApi(APIView):
    required_actions = {"GET": Action.DATA_SOURCE_VIEW, "PATCH": Action.DATA_SOURCE_CHANGE,
                        "DELETE": Action.DATA_SOURCE_DELETE}

    @extend_schema_serializer(component_name="DataSourceUpdate")
    class InputSerializer(_DataSourceFields):
        pass

    @extend_schema(responses=DataSourceOutput)
    def get(self, request: Request, key: str) -> Response:
        return Response(data_source_document(selectors.data_source_get(key=key)))

    @extend_schema(request=InputSerializer, responses=DataSourceOutput)
    def patch(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request, partial=True)
        source = services.data_source_update(actor=request_actor(request),
                                             source=selectors.data_source_get(key=key), **data)
        return Response(data_source_document(source))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, key: str) -> Response:
        services.data_source_delete(actor=request_actor(request), source=selectors.data_source_get(key=key))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_serializer(component_name="DataSourceTest")
class DataSourceTestOutput(DataclassSerializer[SourceReport]):
    class Meta:
        dataclass = SourceReport


class DataSourceTestApi(APIView):
    """Connect to the warehouse and run each query with a row limit; a failure is reported in the
    body (`ok` false, `error` or per query `problems`), not as an HTTP error."""

    required_actions = {"POST": Action.DATA_SOURCE_TEST}

    @extend_schema(request=None, responses=DataSourceTestOutput)
    def post(self, request: Request, key: str) -> Response:
        report = services.data_source_test(source=selectors.data_source_get(key=key))
        return Response(dataclasses.asdict(report))


# Experiments -----------------------------------------------------------------------------


@extend_schema_serializer(component_name="ExperimentVariation")
class VariationSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(max_length=100, help_text="A variant key of the flag; the first is the control.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    weight = serializers.FloatField(min_value=0.0, max_value=1.0)


@extend_schema_serializer(component_name="ExperimentMetricLink")
class MetricLinkSerializer(serializers.Serializer[Any]):
    metric = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=[c[0] for c in ExperimentMetric.Role.choices], default="secondary")


@extend_schema_serializer(component_name="Experiment")
class ExperimentOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    hypothesis = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField()
    target_mde = serializers.FloatField(
        allow_null=True, help_text="Smallest relative effect on the primary metric worth detecting (0.05 = 5%).")
    tags = serializers.ListField(child=serializers.CharField())
    environment = serializers.CharField()
    flag = serializers.CharField()
    status = serializers.ChoiceField(choices=[c[0] for c in Experiment.Status.choices])
    variations = VariationSerializer(many=True)
    metrics = MetricLinkSerializer(many=True)
    hash_attribute = serializers.CharField()
    seed = serializers.CharField()
    coverage = serializers.FloatField()
    condition = serializers.JSONField()
    segments = serializers.ListField(child=serializers.CharField(),
                                     help_text="Keys of saved segments a unit must all be in to enter.")
    layer = serializers.CharField(allow_null=True)
    range = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    holdout = serializers.CharField(allow_null=True)
    data_source = serializers.CharField(
        allow_null=True, help_text="The data source the readouts read; null: the service's own events.")
    analysis = serializers.JSONField()
    phases = serializers.JSONField()
    rule_id = serializers.CharField(allow_null=True)
    decision = serializers.CharField(allow_null=True)
    shipped_variation = serializers.CharField(allow_null=True)
    decision_note = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    archived_at = serializers.DateTimeField(allow_null=True)


class StrictFloatField(serializers.FloatField):
    """A number, not a boolean (DRF would read `true` as 1.0)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return float(super().to_internal_value(data))


class StrictCharField(serializers.CharField):
    """A string, not a number turned into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class _ExperimentFields(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    hypothesis = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    owner = serializers.CharField(max_length=150, required=False, allow_blank=True)
    variations = VariationSerializer(many=True, required=False)
    metrics = MetricLinkSerializer(many=True, required=False)
    hash_attribute = serializers.CharField(max_length=100, required=False)
    seed = serializers.CharField(max_length=100, required=False, allow_blank=True)
    coverage = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    condition = serializers.JSONField(required=False)
    segments = serializers.ListField(child=serializers.CharField(max_length=100), required=False,
                                     help_text="Keys of saved segments a unit must all be in to enter.")
    layer = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    range_start = serializers.FloatField(required=False, allow_null=True)
    range_end = serializers.FloatField(required=False, allow_null=True)
    holdout = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    data_source = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True,
        help_text="Key of the data source holding the exposures and events; null or empty: the service's own.")
    alpha = serializers.FloatField(required=False)
    difference_type = serializers.ChoiceField(choices=["relative", "absolute"], required=False)
    sequential = serializers.BooleanField(required=False)
    sequential_tuning = serializers.FloatField(required=False)
    cuped = serializers.BooleanField(required=False)
    cuped_lookback_days = serializers.IntegerField(required=False)
    correction = serializers.ChoiceField(choices=["none", "holm", "bh"], required=False)
    min_sample_per_arm = serializers.IntegerField(required=False, min_value=0)
    stats_engine = serializers.ChoiceField(
        choices=["frequentist", "bayesian"], required=False,
        help_text="The statistics engine; when creating without it, the project's default engine. The Bayesian "
                  "engine takes neither `sequential` nor a `correction`.")
    prior_enabled = serializers.BooleanField(
        required=False, help_text="Bayesian engine: a proper normal prior on the relative lift instead of a flat one.")
    prior_mean = StrictFloatField(required=False, help_text="Prior mean of the relative lift, -1 to 1 (default 0).")
    prior_stddev = StrictFloatField(
        required=False, help_text="Prior standard deviation of the relative lift, 0.001 to 10 (default 0.3).")
    slice_attributes = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    tags = serializers.ListField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False), required=False,
        help_text="Up to 20 lowercase slugs of at most 40 characters, e.g. [\"checkout\", \"q3-growth\"]; "
                  "trimmed and lowercased, repeats dropped.",
    )
    target_mde = StrictFloatField(
        required=False, allow_null=True,
        help_text="Smallest relative effect on the primary metric worth detecting, above 0 and at most 10 "
                  "(0.05 = 5%); null clears it.",
    )


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    for field in ("variations", "metrics"):
        if field in data and data[field] is not None:
            data[field] = [dict(item) for item in data[field]]
    return data


def _document(key: str) -> dict[str, Any]:
    return experiment_document(selectors.experiment_get(key=key))


class ExperimentListApi(ListApi):
    required_actions = {"GET": Action.EXPERIMENT_VIEW, "POST": Action.EXPERIMENT_CREATE}

    @extend_schema_serializer(component_name="ExperimentCreate")
    class InputSerializer(_ExperimentFields):
        key = serializers.CharField(max_length=100)
        flag = serializers.CharField(max_length=100)
        environment = serializers.CharField(max_length=64)

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("environment", str),
                    OpenApiParameter("flag", str), OpenApiParameter("search", str),
                    OpenApiParameter("tag", str, description="only experiments with this tag")],
        responses=ExperimentOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        experiments = selectors.experiment_list(
            status=params.get("status"), environment=params.get("environment"), flag=params.get("flag"),
            search=params.get("search"), tag=params.get("tag"),
        )
        return self.page_response(request, experiments, lambda page: [experiment_document(e) for e in page])

    @extend_schema(request=InputSerializer, responses={201: ExperimentOutput})
    def post(self, request: Request) -> Response:
        data = _plain(validated_input(self.InputSerializer, request))
        data["flag"] = flag_selectors.flag_get(key=data["flag"])
        data["environment"] = flag_selectors.environment_get(key=data["environment"])
        experiment = services.experiment_create(actor=request_actor(request), **data)
        return Response(_document(experiment.key), status=status.HTTP_201_CREATED)


class ExperimentDetailApi(ExperimentScoped, APIView):
    required_actions = {"GET": Action.EXPERIMENT_VIEW, "PATCH": Action.EXPERIMENT_CHANGE}

    @extend_schema_serializer(component_name="ExperimentUpdate")
    class InputSerializer(_ExperimentFields):
        pass

    @extend_schema(responses=ExperimentOutput)
    def get(self, request: Request, key: str) -> Response:
        return Response(_document(key))

    @extend_schema(request=InputSerializer, responses=ExperimentOutput)
    def patch(self, request: Request, key: str) -> Response:
        data = _plain(validated_input(self.InputSerializer, request, partial=True))
        services.experiment_update(actor=request_actor(request), experiment=selectors.experiment_get(key=key), **data)
        return Response(_document(key))


class ExperimentStartApi(ExperimentScoped, APIView):
    required_actions = {"POST": Action.EXPERIMENT_START}

    @extend_schema(request=None, responses=ExperimentOutput)
    def post(self, request: Request, key: str) -> Response:
        services.experiment_start(actor=request_actor(request), experiment=selectors.experiment_get(key=key))
        return Response(_document(key))


class ExperimentStopApi(ExperimentScoped, APIView):
    required_actions = {"POST": Action.EXPERIMENT_STOP}

    @extend_schema_serializer(component_name="ExperimentStop")
    class InputSerializer(serializers.Serializer[Any]):
        decision = serializers.ChoiceField(choices=["ship", "rollback"])
        variation = serializers.CharField(max_length=100, required=False, allow_null=True,
                                          help_text="The variation to ship (decision 'ship').")
        note = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=ExperimentOutput)
    def post(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request)
        services.experiment_stop(actor=request_actor(request), experiment=selectors.experiment_get(key=key), **data)
        return Response(_document(key))


class ExperimentArchiveApi(ExperimentScoped, APIView):
    required_actions = {"POST": Action.EXPERIMENT_ARCHIVE}

    @extend_schema(request=None, responses=ExperimentOutput)
    def post(self, request: Request, key: str) -> Response:
        services.experiment_archive(actor=request_actor(request), experiment=selectors.experiment_get(key=key))
        return Response(_document(key))


class ExperimentRefreshApi(ExperimentScoped, APIView):
    """Queue a readout now; poll the results endpoint for it."""

    required_actions = {"POST": Action.EXPERIMENT_REFRESH}

    @extend_schema_serializer(component_name="ExperimentRefresh")
    class InputSerializer(serializers.Serializer[Any]):
        phase = serializers.IntegerField(required=False, min_value=1)

    @extend_schema_serializer(component_name="ExperimentRefreshQueued")
    class OutputSerializer(serializers.Serializer[Any]):
        snapshot = serializers.IntegerField()
        status = serializers.CharField()
        phase = serializers.IntegerField(allow_null=True)

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request)
        snapshot = services.experiment_readout_request(
            actor=request_actor(request), experiment=selectors.experiment_get(key=key),
            trigger=ResultSnapshot.Trigger.API, phase_number=data.get("phase"),
        )
        phase = snapshot.phase
        return Response({"snapshot": snapshot.pk, "status": snapshot.status, "phase": phase.number if phase else None},
                        status=status.HTTP_202_ACCEPTED)


@extend_schema_serializer(component_name="RampStep")
class RampStepOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    coverage = serializers.FloatField()
    apply_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=[c[0] for c in RampStep.Status.choices])
    applied_at = serializers.DateTimeField(allow_null=True)
    phase = serializers.IntegerField(allow_null=True, help_text="The phase the step was applied in.")
    note = serializers.CharField(help_text="Why a step was skipped or cancelled.")
    requested_by = serializers.CharField()


@extend_schema_serializer(component_name="ExperimentRamp")
class RampOutput(serializers.Serializer[Any]):
    experiment = serializers.CharField()
    status = serializers.CharField()
    coverage = serializers.FloatField()
    weights = serializers.ListField(child=serializers.FloatField())
    phase = serializers.IntegerField(allow_null=True)
    steps = RampStepOutput(many=True)
    change = serializers.JSONField(
        required=False,
        help_text="What the request does (POST): `new_phase` (a new phase starts: results restart) or not "
                  "(the phase continues: units already in keep their variation), `words`, `applied` "
                  "(false for a dry run or a schedule).")
    cancelled = serializers.IntegerField(required=False, help_text="Planned steps cancelled (DELETE).")


class ExperimentRampApi(ExperimentScoped, APIView):
    """Ramp a running experiment: raise its coverage now or on a schedule, or change its split.

    A coverage raise continues the current phase (units already in keep their variation); a new
    split or a lower coverage starts a new phase. `dry_run` answers which, changing nothing.
    """

    required_actions = {"GET": Action.EXPERIMENT_VIEW, "POST": Action.EXPERIMENT_RAMP,
                        "DELETE": Action.EXPERIMENT_RAMP}

    @extend_schema_serializer(component_name="ExperimentRampStepInput")
    class StepSerializer(serializers.Serializer[Any]):
        coverage = StrictFloatField(min_value=0.0, max_value=1.0, help_text="Share of eligible units, 0.5 = 50%.")
        apply_at = serializers.DateTimeField(
            help_text="When to apply it: ISO 8601 with a time zone (UTC when none), in the future, within a year.")

    @extend_schema_serializer(component_name="ExperimentRampInput")
    class InputSerializer(serializers.Serializer[Any]):
        coverage = StrictFloatField(required=False, min_value=0.0, max_value=1.0,
                                    help_text="The coverage now, above 0 and at most 1.")
        weights = serializers.ListField(
            child=StrictFloatField(min_value=0.0, max_value=1.0), required=False, max_length=100,
            help_text="One weight per variation, control first, summing to 1 (starts a new phase).")
        steps = serializers.ListField(
            child=serializers.DictField(), required=False, min_length=1, max_length=MAX_RAMP_STEPS,
            help_text=f"A schedule of coverage raises (1 to {MAX_RAMP_STEPS} steps); it replaces the planned "
                      "steps. Not together with `coverage` or `weights`.")
        dry_run = serializers.BooleanField(required=False, default=False,
                                           help_text="Validate and describe the change without making it.")

        def validate_steps(self, value: list[Any]) -> list[dict[str, Any]]:
            steps = []
            errors: dict[str, Any] = {}
            for i, item in enumerate(value):
                step = ExperimentRampApi.StepSerializer(data=item)
                if not step.is_valid():
                    errors[str(i)] = step.errors
                else:
                    steps.append(dict(step.validated_data))
            if errors:
                raise serializers.ValidationError(errors)
            return steps

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if "steps" in attrs and ("coverage" in attrs or "weights" in attrs):
                raise serializers.ValidationError(
                    {"steps": ["Give either a schedule (`steps`) or a change now (`coverage`, `weights`)."]})
            if not any(k in attrs for k in ("steps", "coverage", "weights")):
                raise serializers.ValidationError(
                    {"coverage": ["Give the new coverage, the new weights, or a schedule of steps."]})
            return attrs

    def _state(self, key: str, **extra: Any) -> dict[str, Any]:
        experiment = selectors.experiment_get(key=key)
        return {**ramp_document(experiment, selectors.ramp_steps(experiment=experiment)), **extra}

    @extend_schema(responses=RampOutput)
    def get(self, request: Request, key: str) -> Response:
        return Response(self._state(key))

    @extend_schema(request=InputSerializer, responses=RampOutput)
    def post(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request)
        experiment = selectors.experiment_get(key=key)
        actor = request_actor(request)
        if "steps" in data:
            steps = [(s["coverage"], s["apply_at"]) for s in data["steps"]]
            if data["dry_run"]:
                services.ramp_schedule_check(experiment=experiment, steps=steps)
            else:
                services.experiment_ramp_schedule(actor=actor, experiment=experiment, steps=steps)
            change = {"new_phase": False, "applied": False,
                      "words": "Each step raises the coverage when it is due; the phase continues."}
            return Response(self._state(key, change=change))
        coverage, weights = data.get("coverage"), data.get("weights")
        if data["dry_run"]:
            effect = services.ramp_preview(experiment=experiment, coverage=coverage, weights=weights)
        else:
            _, effect = services.experiment_ramp(actor=actor, experiment=experiment, coverage=coverage,
                                                 weights=weights)
        change = {"new_phase": effect.new_phase, "applied": not data["dry_run"], "words": effect.words}
        return Response(self._state(key, change=change))

    @extend_schema(request=None, responses=RampOutput)
    def delete(self, request: Request, key: str) -> Response:
        count = services.experiment_ramp_cancel(actor=request_actor(request),
                                                experiment=selectors.experiment_get(key=key))
        return Response(self._state(key, cancelled=count))


@extend_schema_serializer(component_name="ResultSnapshot")
class ResultSnapshotOutput(serializers.Serializer[SnapshotRecord]):
    """One readout run: the run's facts (`SnapshotRun`) and the readout's fields (`Readout`) side by side."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        run: DataclassSerializer[SnapshotRun] = DataclassSerializer(dataclass=SnapshotRun)
        readout: DataclassSerializer[Readout] = DataclassSerializer(dataclass=Readout)
        fields = readout.get_fields()
        for field in fields.values():
            field.required = True  # a run without results still shows every field, empty
        return {**run.get_fields(), **fields}


@extend_schema_serializer(component_name="ExperimentResults")
class ExperimentResultsOutput(DataclassSerializer[ExperimentResults]):
    latest = ResultSnapshotOutput(
        allow_null=True,
        help_text="The newest readout of the phase. Per metric: `fixed`, `cuped`, `sequential` (with the "
                  "experiment's CUPED setting) and, with CUPED on, `sequential_unadjusted`, each a list of "
                  "comparisons per treatment in both difference types (the experiment's own first); with the "
                  "Bayesian engine `bayesian` (and, with CUPED on, `bayesian_unadjusted`) instead of the sequential "
                  "pair, whose comparisons hold the posterior mean, the credible interval, the chance to win and "
                  "`risk` (of keeping the control, of choosing the variation); `heterogeneity` tests per treatment "
                  "and slice attribute whether the lift differs across the attribute's values. "
                  "`comparisons` holds the headline view. Readouts stored in an older shape are shown in the "
                  "current one, with the views they stored.",
    )
    latest_success = ResultSnapshotOutput(
        allow_null=True, help_text="The newest successful readout when the latest one failed.")

    class Meta:
        dataclass = ExperimentResults
        fields = ("experiment", "status", "phase", "latest", "latest_success", "pending", "history")


class ExperimentResultsApi(ExperimentScoped, APIView):
    """The latest readout (successful or failed) and the history of readouts for trends."""

    required_actions = {"GET": Action.EXPERIMENT_VIEW}

    @extend_schema(
        parameters=[
            OpenApiParameter("phase", int, description="phase number; default: the current phase"),
            OpenApiParameter("history", int, description="how many history points (default 100, at most 1000)"),
        ],
        responses=ExperimentResultsOutput,
    )
    def get(self, request: Request, key: str) -> Response:
        experiment = selectors.experiment_get(key=key)
        try:
            number = int(request.query_params["phase"]) if "phase" in request.query_params else None
            limit = min(1000, max(1, int(request.query_params.get("history", 100))))
        except ValueError as exc:
            raise ValidationFailed("phase and history must be integers.") from exc
        results = selectors.experiment_results(experiment=experiment, phase_number=number, history=limit)
        return Response(results.to_json())


@extend_schema_serializer(component_name="ProjectSettings")
class ProjectSettingsOutput(serializers.Serializer[Any]):
    stats_engine_default = serializers.ChoiceField(
        choices=["", "frequentist", "bayesian"],
        help_text="The engine of a new experiment that names none; empty: the service's STATS_ENGINE_DEFAULT.")
    stats_engine_effective = serializers.ChoiceField(
        choices=["frequentist", "bayesian"], help_text="The engine a new experiment gets today.")


class ProjectSettingsApi(APIView):
    """The project's settings: the default statistics engine of new experiments."""

    required_actions = {"GET": Action.PROJECT_SETTINGS_VIEW, "PATCH": Action.PROJECT_SETTINGS_CHANGE}

    @extend_schema_serializer(component_name="ProjectSettingsUpdate")
    class InputSerializer(serializers.Serializer[Any]):
        stats_engine_default = serializers.ChoiceField(
            choices=["", "frequentist", "bayesian"], required=False, allow_blank=True,
            help_text="frequentist, bayesian, or empty for the service's default. Existing experiments keep "
                      "their engine.")

    @extend_schema(responses=ProjectSettingsOutput)
    def get(self, request: Request) -> Response:
        return Response(project.project_settings_document(project.project_settings_get()))

    @extend_schema(request=InputSerializer, responses=ProjectSettingsOutput)
    def patch(self, request: Request) -> Response:
        data = validated_input(self.InputSerializer, request, partial=True)
        row = project.project_settings_update(actor=request_actor(request), **data)
        return Response(project.project_settings_document(row))
