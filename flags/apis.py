"""Management API for environments, flags, rules and segments: validate, call a service, serialize."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from base.authentication import request_actor
from base.change_requests import environment_review_set
from base.models import ClientPayload, Environment
from base.permissions import Action
from config.api import ListApi, validated_input
from flags import attributes, selectors, services
from flags.documents import attribute_document, flag_document, rule_document, segment_document
from flags.engine.limits import (
    METADATA_KEY_MAX_LENGTH,
    METADATA_MAX_KEYS,
    METADATA_MAX_STRING,
    SEGMENT_MAX_IDS,
)
from flags.engine.validation import METADATA_KEY_PATTERN, METADATA_RESERVED_KEYS
from flags.models import Flag


class EnvironmentOutput(serializers.Serializer[Environment]):
    key = serializers.CharField()
    name = serializers.CharField()
    client_key = serializers.CharField()
    server_key = serializers.CharField()
    config_version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
    requires_review = serializers.BooleanField()
    review_exempts_kill_switch = serializers.BooleanField()
    client_payload = serializers.CharField(
        help_text="What client keys receive: full, private (secure attributes hashed), encrypted (and hashed) "
                  "or remote (remote evaluation only).")
    decryption_key = serializers.CharField(help_text="The SDKs' decryptionKey for an encrypted payload.")
    attribute_salt = serializers.CharField(help_text="What applications hash secure attribute values with.")


class EnvironmentScoped:
    """An endpoint about one environment, named in its URL: the caller's role there decides."""

    environment_kwarg = "env"
    kwargs: dict[str, Any]

    def permission_environment(self) -> Environment:
        return selectors.environment_get(key=self.kwargs[self.environment_kwarg])


class EnvironmentListApi(ListApi):
    required_actions = {"GET": Action.ENVIRONMENT_VIEW, "POST": Action.ENVIRONMENT_CREATE}

    class InputSerializer(serializers.Serializer[Any]):
        key = serializers.CharField(max_length=64)
        name = serializers.CharField(max_length=120, required=False, default="")

    @extend_schema(responses=EnvironmentOutput(many=True))
    def get(self, request: Request) -> Response:
        return self.page_response(
            request, selectors.environment_list(), lambda page: [EnvironmentOutput(e).data for e in page]
        )

    @extend_schema(request=InputSerializer, responses={201: EnvironmentOutput})
    def post(self, request: Request) -> Response:
        data = validated_input(self.InputSerializer, request)
        env = services.environment_create(actor=request_actor(request), **data)
        return Response(EnvironmentOutput(env).data, status=status.HTTP_201_CREATED)


class EnvironmentDetailApi(EnvironmentScoped, APIView):
    environment_kwarg = "key"
    required_actions = {"GET": Action.ENVIRONMENT_VIEW, "PATCH": Action.ENVIRONMENT_CHANGE}

    class InputSerializer(serializers.Serializer[Any]):
        requires_review = serializers.BooleanField(required=False)
        review_exempts_kill_switch = serializers.BooleanField(required=False)
        client_payload = serializers.ChoiceField(choices=ClientPayload.choices, required=False)

    @extend_schema(responses=EnvironmentOutput)
    def get(self, request: Request, key: str) -> Response:
        return Response(EnvironmentOutput(selectors.environment_get(key=key)).data)

    @extend_schema(request=InputSerializer, responses=EnvironmentOutput)
    def patch(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request, partial=True)
        actor = request_actor(request)
        env = selectors.environment_get(key=key)
        client_payload = data.pop("client_payload", None)
        with transaction.atomic():
            if client_payload is not None:
                env = services.environment_update(actor=actor, environment=env, client_payload=client_payload)
            if data or client_payload is None:
                env = environment_review_set(actor=actor, environment=env, **data)
        return Response(EnvironmentOutput(env).data)


class EnvironmentRotateKeysApi(EnvironmentScoped, APIView):
    environment_kwarg = "key"
    required_actions = {"POST": Action.ENVIRONMENT_CHANGE}

    @extend_schema(request=None, responses=EnvironmentOutput)
    def post(self, request: Request, key: str) -> Response:
        env = services.environment_rotate_keys(
            actor=request_actor(request), environment=selectors.environment_get(key=key)
        )
        return Response(EnvironmentOutput(env).data)


class VariantSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    value = serializers.JSONField()


METADATA_HELP = (
    "Free-form OpenFeature flag metadata that OFREP serves beside the flag's own fields: an object of at most "
    f"{METADATA_MAX_KEYS} keys (1-{METADATA_KEY_MAX_LENGTH} characters matching {METADATA_KEY_PATTERN.pattern}; "
    f"not {', '.join(METADATA_RESERVED_KEYS)}) to strings (at most {METADATA_MAX_STRING} characters), "
    "numbers or booleans."
)


# OpenAPI 3.0 has no propertyNames: the key pattern is in the description.
@extend_schema_field({
    "type": "object",
    "maxProperties": METADATA_MAX_KEYS,
    "additionalProperties": {"oneOf": [{"type": "string", "maxLength": METADATA_MAX_STRING}, {"type": "number"},
                                       {"type": "boolean"}]},
    "example": {"release": "1.0.2", "jira": "PAY-42", "cost_weight": 0.5, "pii": False},
})
class MetadataField(serializers.JSONField):
    """A flag's metadata; the service checks it (``flags.engine.validation.check_metadata``)."""


class PrerequisiteSerializer(serializers.Serializer[Any]):
    flag = serializers.CharField(max_length=100)
    condition = serializers.JSONField(required=False, default={"value": True})


def _flag_outputs(flags: Sequence[Flag]) -> list[dict[str, Any]]:
    """Flag documents plus when the server last evaluated each flag, per environment
    (``environments.<key>.last_evaluated_at``) and overall (``last_evaluated_at``)."""
    usage = selectors.flag_usage_by_environment(flag_ids=[f.pk for f in flags])
    return [_with_usage(flag_document(f), usage.get(f.pk, {})) for f in flags]


def _with_usage(document: dict[str, Any], evaluated: Mapping[str, datetime]) -> dict[str, Any]:
    for env_key, state in document["environments"].items():
        moment = evaluated.get(env_key)
        state["last_evaluated_at"] = moment.isoformat() if moment else None
    latest = max(evaluated.values(), default=None)
    document["last_evaluated_at"] = latest.isoformat() if latest else None
    return document


def _flag_output(flag: Flag) -> dict[str, Any]:
    return _flag_outputs([flag])[0]


class FlagOutput(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    value_type = serializers.CharField()
    owner = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    metadata = MetadataField(help_text=METADATA_HELP)
    lifecycle = serializers.CharField()
    prerequisites = PrerequisiteSerializer(many=True)
    archived = serializers.BooleanField()
    variants = VariantSerializer(many=True)
    environments = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Per environment: the state and rules, and `last_evaluated_at` (null: never).",
    )
    last_evaluated_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Latest evaluation by the server (REST evaluate, OFREP, exposures sent to the events API) in "
        "any environment; recorded about once a minute. GrowthBook payload fetches are not evaluations.",
    )


class FlagListApi(ListApi):
    required_actions = {"GET": Action.FLAG_VIEW, "POST": Action.FLAG_CREATE}

    class InputSerializer(serializers.Serializer[Any]):
        key = serializers.CharField(max_length=100)
        value_type = serializers.ChoiceField(choices=["boolean", "string", "number", "json"], default="boolean")
        variants = VariantSerializer(many=True, required=False)
        default_variant = serializers.CharField(required=False)
        off_variant = serializers.CharField(required=False)
        name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
        description = serializers.CharField(required=False, default="", allow_blank=True)
        owner = serializers.CharField(max_length=150, required=False, default="", allow_blank=True)
        tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)
        metadata = MetadataField(required=False, default=dict, help_text=METADATA_HELP)
        lifecycle = serializers.ChoiceField(choices=["temporary", "permanent"], default="temporary")
        prerequisites = PrerequisiteSerializer(many=True, required=False, default=list)

    @extend_schema(
        parameters=[
            OpenApiParameter("archived", bool, description="true: only archived flags; default: active flags"),
            OpenApiParameter("tag", str),
            OpenApiParameter("search", str, description="substring of the key"),
        ],
        responses=FlagOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        archived = request.query_params.get("archived", "false").lower() in ("1", "true", "yes")
        flags = selectors.flag_list(
            archived=archived, tag=request.query_params.get("tag"), search=request.query_params.get("search")
        )
        return self.page_response(request, flags, _flag_outputs)

    @extend_schema(request=InputSerializer, responses={201: FlagOutput})
    def post(self, request: Request) -> Response:
        data = validated_input(self.InputSerializer, request)
        if "variants" in data:
            data["variants"] = [dict(v) for v in data["variants"]]
        data["prerequisites"] = [dict(p) for p in data["prerequisites"]]
        flag = services.flag_create(actor=request_actor(request), **data)
        return Response(_flag_output(flag), status=status.HTTP_201_CREATED)


class FlagDetailApi(APIView):
    required_actions = {"GET": Action.FLAG_VIEW, "PATCH": Action.FLAG_CHANGE}

    class InputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        description = serializers.CharField(required=False, allow_blank=True)
        owner = serializers.CharField(max_length=150, required=False, allow_blank=True)
        tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
        metadata = MetadataField(required=False, help_text=METADATA_HELP + " Replaces the whole object.")
        lifecycle = serializers.ChoiceField(choices=["temporary", "permanent"], required=False)
        prerequisites = PrerequisiteSerializer(many=True, required=False)
        variants = VariantSerializer(many=True, required=False)

    @extend_schema(responses=FlagOutput)
    def get(self, request: Request, key: str) -> Response:
        return Response(_flag_output(selectors.flag_get(key=key)))

    @extend_schema(request=InputSerializer, responses=FlagOutput)
    def patch(self, request: Request, key: str) -> Response:
        data = validated_input(self.InputSerializer, request, partial=True)
        for field in ("variants", "prerequisites"):
            if field in data:
                data[field] = [dict(v) for v in data[field]]
        flag = services.flag_update(actor=request_actor(request), flag=selectors.flag_get(key=key), **data)
        return Response(_flag_output(selectors.flag_get(key=flag.key)))


class FlagArchiveApi(APIView):
    required_actions = {"POST": Action.FLAG_ARCHIVE}
    archived = True

    @extend_schema(request=None, responses=FlagOutput)
    def post(self, request: Request, key: str) -> Response:
        flag = services.flag_archive(
            actor=request_actor(request), flag=selectors.flag_get(key=key), archived=self.archived
        )
        return Response(_flag_output(selectors.flag_get(key=flag.key)))


class FlagRestoreApi(FlagArchiveApi):
    archived = False


class FlagStateApi(EnvironmentScoped, APIView):
    required_actions = {"PATCH": Action.FLAG_KILL_SWITCH}

    class InputSerializer(serializers.Serializer[Any]):
        enabled = serializers.BooleanField(required=False)
        default_variant = serializers.CharField(required=False)
        off_variant = serializers.CharField(required=False)

    @extend_schema(request=InputSerializer, responses=FlagOutput)
    def patch(self, request: Request, key: str, env: str) -> Response:
        data = validated_input(self.InputSerializer, request, partial=True)
        flag = selectors.flag_get(key=key)
        services.flag_state_update(
            actor=request_actor(request), flag=flag, environment=selectors.environment_get(key=env), **data
        )
        return Response(_flag_output(selectors.flag_get(key=key)))


class RuleSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["force", "rollout", "experiment"])
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)
    condition = serializers.JSONField(required=False)
    segments = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    prerequisites = PrerequisiteSerializer(many=True, required=False)
    variant = serializers.CharField(max_length=100, required=False, allow_blank=True)
    coverage = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    hash_attribute = serializers.CharField(max_length=100, required=False)
    fallback_attribute = serializers.CharField(max_length=100, required=False, allow_blank=True)
    seed = serializers.CharField(max_length=100, required=False, allow_blank=True)
    variations = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    weights = serializers.ListField(child=serializers.FloatField(min_value=0.0), required=False)
    holdout = serializers.CharField(
        max_length=64, required=False, allow_blank=True, allow_null=True,
        help_text="Experiment rules: key of a holdout whose units never enter the experiment.",
    )
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    position = serializers.IntegerField(required=False, min_value=0)


@extend_schema_serializer(component_name="Rule")
class RuleOutput(serializers.Serializer[Any]):
    """A rule as the API returns it (`flags.documents.rule_document`)."""

    id = serializers.CharField(help_text="The rule's stable id (`uid` in the URLs).")
    position = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["force", "rollout", "experiment"])
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    condition = serializers.JSONField(help_text="A GrowthBook-style targeting condition.")
    segments = serializers.ListField(child=serializers.CharField())
    prerequisites = PrerequisiteSerializer(many=True)
    variant = serializers.CharField()
    coverage = serializers.FloatField()
    hash_attribute = serializers.CharField()
    fallback_attribute = serializers.CharField()
    seed = serializers.CharField()
    variations = serializers.ListField(child=serializers.CharField())
    weights = serializers.ListField(child=serializers.FloatField())
    experiment_key = serializers.CharField()
    namespace = serializers.JSONField(allow_null=True, help_text="[layer key, range start, range end] or null.")
    holdout = serializers.CharField(allow_null=True)
    passthrough = serializers.ListField(
        child=serializers.CharField(),
        help_text="Experiment rules: variations whose units are counted and then fall through to the next rules "
                  "(set by guarded rollouts).")
    phase = serializers.CharField()
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)


def _rulevalidated_input(request: Request, *, partial: bool) -> dict[str, Any]:
    data = validated_input(RuleSerializer, request, partial=partial)
    if "prerequisites" in data:
        data["prerequisites"] = [dict(p) for p in data["prerequisites"]]
    return data


class FlagRuleListApi(EnvironmentScoped, APIView):
    required_actions = {"GET": Action.FLAG_VIEW, "POST": Action.FLAG_CHANGE}

    @extend_schema(responses=RuleOutput(many=True))
    def get(self, request: Request, key: str, env: str) -> Response:
        rules = selectors.rule_list(flag=selectors.flag_get(key=key), environment=selectors.environment_get(key=env))
        return Response([rule_document(r) for r in rules])

    @extend_schema(request=RuleSerializer, responses={201: RuleOutput})
    def post(self, request: Request, key: str, env: str) -> Response:
        data = _rulevalidated_input(request, partial=False)
        rule = services.flag_rule_create(
            actor=request_actor(request),
            flag=selectors.flag_get(key=key),
            environment=selectors.environment_get(key=env),
            **data,
        )
        return Response(rule_document(rule), status=status.HTTP_201_CREATED)


class FlagRuleDetailApi(EnvironmentScoped, APIView):
    required_actions = {"PATCH": Action.FLAG_CHANGE, "DELETE": Action.FLAG_CHANGE}

    @extend_schema(request=RuleSerializer, responses=RuleOutput)
    def patch(self, request: Request, key: str, env: str, uid: str) -> Response:
        data = _rulevalidated_input(request, partial=True)
        data.pop("position", None)
        rule = selectors.rule_get(
            flag=selectors.flag_get(key=key), environment=selectors.environment_get(key=env), uid=uid
        )
        rule = services.flag_rule_update(actor=request_actor(request), rule=rule, **data)
        return Response(rule_document(rule))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, key: str, env: str, uid: str) -> Response:
        rule = selectors.rule_get(
            flag=selectors.flag_get(key=key), environment=selectors.environment_get(key=env), uid=uid
        )
        services.flag_rule_delete(actor=request_actor(request), rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FlagRuleReorderApi(EnvironmentScoped, APIView):
    required_actions = {"POST": Action.FLAG_CHANGE}

    class InputSerializer(serializers.Serializer[Any]):
        rule_ids = serializers.ListField(child=serializers.CharField(max_length=40))

    @extend_schema(request=InputSerializer, responses=RuleOutput(many=True))
    def post(self, request: Request, key: str, env: str) -> Response:
        data = validated_input(self.InputSerializer, request)
        flag, environment = selectors.flag_get(key=key), selectors.environment_get(key=env)
        services.flag_rule_reorder(
            actor=request_actor(request), flag=flag, environment=environment, rule_ids=data["rule_ids"]
        )
        return Response([rule_document(r) for r in selectors.rule_list(flag=flag, environment=environment)])


class SegmentSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=["condition", "ids"], required=False)
    condition = serializers.JSONField(required=False)
    attribute = serializers.CharField(max_length=100, required=False)
    ids = serializers.ListField(child=serializers.JSONField(), required=False, max_length=SEGMENT_MAX_IDS)
    private = serializers.BooleanField(
        required=False,
        help_text="Client keys receive the segment's ids and condition values only as salted SHA-256 hashes "
                  "(or not at all), as the environment's client_payload decides.")


class SegmentListApi(ListApi):
    required_actions = {"GET": Action.SEGMENT_VIEW, "POST": Action.SEGMENT_CREATE}

    @extend_schema(responses=SegmentSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.page_response(request, selectors.segment_list(), lambda page: [segment_document(s) for s in page])

    @extend_schema(request=SegmentSerializer, responses={201: SegmentSerializer})
    def post(self, request: Request) -> Response:
        data = validated_input(SegmentSerializer, request)
        segment = services.segment_create(actor=request_actor(request), **data)
        return Response(segment_document(segment), status=status.HTTP_201_CREATED)


class SegmentDetailApi(APIView):
    required_actions = {"GET": Action.SEGMENT_VIEW, "PATCH": Action.SEGMENT_CHANGE, "DELETE": Action.SEGMENT_DELETE}

    @extend_schema(responses=SegmentSerializer)
    def get(self, request: Request, key: str) -> Response:
        return Response(segment_document(selectors.segment_get(key=key)))

    @extend_schema(request=SegmentSerializer, responses=SegmentSerializer)
    def patch(self, request: Request, key: str) -> Response:
        data = validated_input(SegmentSerializer, request, partial=True)
        data.pop("key", None)
        segment = services.segment_update(actor=request_actor(request), segment=selectors.segment_get(key=key), **data)
        return Response(segment_document(segment))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, key: str) -> Response:
        services.segment_delete(actor=request_actor(request), segment=selectors.segment_get(key=key))
        return Response(status=status.HTTP_204_NO_CONTENT)


ATTRIBUTE_TYPES_HELP = (
    "string, number, boolean, semver (version strings such as 1.2.3) or list (a list of strings or numbers)."
)


class AttributeSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="The attribute's name as the applications send it, e.g. country.")
    type = serializers.ChoiceField(choices=["string", "number", "boolean", "semver", "list"], default="string",
                                   help_text=ATTRIBUTE_TYPES_HELP)
    allowed_values = serializers.ListField(
        child=serializers.JSONField(), required=False, default=list,
        help_text="Optional: the values it can take, offered as choices by the condition builder "
                  "(numbers for number attributes, versions for semver, strings or numbers for list items).",
    )
    description = serializers.CharField(required=False, default="", allow_blank=True)


class AttributeChangeSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["string", "number", "boolean", "semver", "list"], required=False,
                                   help_text=ATTRIBUTE_TYPES_HELP)
    allowed_values = serializers.ListField(child=serializers.JSONField(), required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class AttributeListApi(ListApi):
    required_actions = {"GET": Action.ATTRIBUTE_VIEW, "POST": Action.ATTRIBUTE_CREATE}

    @extend_schema(responses=AttributeSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.page_response(request, selectors.attribute_list(),
                                  lambda page: [attribute_document(a) for a in page])

    @extend_schema(request=AttributeSerializer, responses={201: AttributeSerializer})
    def post(self, request: Request) -> Response:
        data = validated_input(AttributeSerializer, request)
        attribute = attributes.attribute_create(actor=request_actor(request), **data)
        return Response(attribute_document(attribute), status=status.HTTP_201_CREATED)


class AttributeDetailApi(APIView):
    required_actions = {"GET": Action.ATTRIBUTE_VIEW, "PATCH": Action.ATTRIBUTE_CHANGE,
                        "DELETE": Action.ATTRIBUTE_DELETE}

    @extend_schema(responses=AttributeSerializer)
    def get(self, request: Request, name: str) -> Response:
        return Response(attribute_document(selectors.attribute_get(name=name)))

    @extend_schema(request=AttributeChangeSerializer, responses=AttributeSerializer)
    def patch(self, request: Request, name: str) -> Response:
        data = validated_input(AttributeChangeSerializer, request, partial=True)
        attribute = attributes.attribute_update(actor=request_actor(request),
                                                attribute=selectors.attribute_get(name=name), **data)
        return Response(attribute_document(attribute))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        attributes.attribute_delete(actor=request_actor(request), attribute=selectors.attribute_get(name=name))
        return Response(status=status.HTTP_204_NO_CONTENT)
