"""`POST /api/v1/events`: a batch of exposures and metric events from an SDK (client or server key).

Validation and writes are the experiments app's (`experiments.ingestion`); this view reads the
body, authenticates the key, and notes the experiments whose exposures arrived as in use.
"""

from __future__ import annotations

from typing import Any

import orjson
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from base.keys import TOKEN_PREFIX
from config.errors import ApplicationError, Unauthorized, ValidationFailed
from experiments import services
from experiments.ingestion import MAX_BATCH_ITEMS
from flags import selectors as flag_selectors
from serving.usage import recorder as usage

# 1,000 items with their properties fit well within this.
EVENTS_MAX_BODY_BYTES = 4 * 1024 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-API-Key",
    "Access-Control-Max-Age": "86400",
}


class PayloadTooLarge(ApplicationError):
    status = 413
    code = "payload_too_large"


# Events ----------------------------------------------------------------------------------


class EventIngestApi(APIView):
    """Batch of exposures and metric events from an SDK (client or server key)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema_serializer(component_name="EventBatch")
    class InputSerializer(serializers.Serializer[Any]):
        @extend_schema_serializer(component_name="EventItem")
        class ItemSerializer(serializers.Serializer[Any]):
            id = serializers.CharField(max_length=128, help_text="Client-generated id; a re-sent id adds nothing.")
            type = serializers.ChoiceField(choices=["exposure", "event"])
            unit_id = serializers.CharField(max_length=256, help_text="The unit's targetingKey.")
            timestamp = serializers.CharField(help_text="ISO 8601 date-time, or epoch milliseconds (a number).")
            experiment = serializers.CharField(required=False, help_text="exposure: the experiment key")
            variation = serializers.CharField(required=False, help_text="exposure: the variation key")
            attributes = serializers.DictField(required=False, help_text="exposure: attributes for slicing")
            name = serializers.CharField(required=False, max_length=100, help_text="event: the event name")
            value = serializers.FloatField(required=False, help_text="event: the value (default 1)")
            properties = serializers.DictField(required=False, help_text="event: free-form properties")

        events = ItemSerializer(many=True, help_text=f"At most {MAX_BATCH_ITEMS} items.")

    @extend_schema_serializer(component_name="EventBatchResult")
    class OutputSerializer(serializers.Serializer[Any]):
        @extend_schema_serializer(component_name="EventRejection")
        class RejectionSerializer(serializers.Serializer[Any]):
            index = serializers.IntegerField()
            code = serializers.CharField()
            message = serializers.CharField()

        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = RejectionSerializer(many=True)

    def _environment(self, request: Request) -> Any:
        meta = request.META
        key = meta.get("HTTP_X_API_KEY")
        if not key:
            scheme, _, value = str(meta.get("HTTP_AUTHORIZATION") or "").partition(" ")
            key = value if scheme.lower() == "bearer" else None
        key = str(key or "").strip()
        if not key:
            raise Unauthorized("Send an SDK key in X-API-Key or Authorization: Bearer.")
        if key.startswith(TOKEN_PREFIX):
            raise Unauthorized("This is a management token; send the environment's SDK key.")
        environment = flag_selectors.environment_by_sdk_key(key=key)
        if environment is None:
            raise Unauthorized("Unknown or revoked SDK key.")
        return environment

    def _body(self, request: Request) -> list[Any]:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > EVENTS_MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {EVENTS_MAX_BODY_BYTES} bytes.")
        stream = request.stream
        raw = stream.read(EVENTS_MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > EVENTS_MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {EVENTS_MAX_BODY_BYTES} bytes.")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed(f"The body is not valid JSON: {exc.msg}.", code="invalid_json") from exc
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise ValidationFailed('Send an object {"events": [...]}.', code="invalid_batch",
                                   details={"events": ["A list of items is required."]})
        items: list[Any] = body["events"]
        if len(items) > MAX_BATCH_ITEMS:
            raise PayloadTooLarge(
                f"A batch holds at most {MAX_BATCH_ITEMS} items; this one has {len(items)}.",
                code="batch_too_large", details={"limit": MAX_BATCH_ITEMS, "items": len(items)},
            )
        return items

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in CORS_HEADERS.items():
            response[name] = value
        return response

    @extend_schema(
        operation_id="events_ingest",
        request=InputSerializer,
        responses={
            202: OutputSerializer,
            400: OpenApiResponse(description="invalid_json or invalid_batch"),
            401: OpenApiResponse(description="missing or unknown SDK key"),
            413: OpenApiResponse(description="batch_too_large (more than 1,000 items) or payload_too_large"),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        environment = self._environment(request)
        items = self._body(request)
        result = services.events_ingest(environment=environment, items=items)
        usage.exposures_received(environment.pk, list(result.exposed), list(result.exposed.values()))
        body = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in result.rejected],
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


