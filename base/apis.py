"""Management API of change requests: list, read, approve, reject, cancel."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from base import change_requests
from base.authentication import request_actor
from base.models import ChangeRequest, Environment
from base.permissions import Action
from base.reviews import COMMENT_MAX_CHARS, change_request_document
from config.api import ListApi, validated_input
from config.errors import NotFound


class ChangeRequestScoped:
    """An endpoint about one change request: the caller's role in its environment decides."""

    kwargs: dict[str, Any]

    def permission_environment(self) -> Environment:
        return self.change_request().environment

    def change_request(self) -> ChangeRequest:
        return change_requests.change_request_get(pk=int(self.kwargs["pk"]))


class ChangeRequestObject(serializers.Serializer[Any]):
    type = serializers.CharField()
    key = serializers.CharField()


class ChangeRequestOutput(serializers.Serializer[Any]):
    """The shape of `change_request_document` (the schema's; the document is built by it)."""

    id = serializers.IntegerField()
    environment = serializers.CharField()
    status = serializers.ChoiceField(choices=ChangeRequest.Status.values)
    operation = serializers.CharField()
    summary = serializers.CharField()
    object = ChangeRequestObject()
    comment = serializers.CharField()
    author = serializers.CharField()
    reviewer = serializers.CharField(allow_null=True)
    review_comment = serializers.CharField()
    note = serializers.CharField()
    base_revision = serializers.CharField()
    apply_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    payload = serializers.DictField()
    changes = serializers.ListField(child=serializers.DictField())


class ReviewInput(serializers.Serializer[Any]):
    comment = serializers.CharField(max_length=COMMENT_MAX_CHARS, required=False, default="", allow_blank=True)


class ChangeRequestListApi(ListApi):
    """With `?environment=`, the caller's role in that environment decides."""

    required_actions = {"GET": Action.ENVIRONMENT_VIEW}

    def permission_environment(self) -> Environment | None:
        key = self.request.query_params.get("environment")
        if not key:
            return None
        found = Environment.objects.filter(key=key).first()
        if found is None:
            raise NotFound(f"Environment '{key}' does not exist.", code="environment_not_found")
        return found

    @extend_schema(responses=ChangeRequestOutput(many=True), parameters=[
        OpenApiParameter("environment", str, description="Only this environment's change requests."),
        OpenApiParameter("status", str, enum=ChangeRequest.Status.values, description="Only those with this status."),
    ])
    def get(self, request: Request) -> Response:
        rows = change_requests.change_request_list(environment=request.query_params.get("environment"),
                                                   status=request.query_params.get("status"))
        return self.page_response(request, rows, lambda page: [change_request_document(r) for r in page])


class ChangeRequestDetailApi(ChangeRequestScoped, APIView):
    required_actions = {"GET": Action.ENVIRONMENT_VIEW}

    @extend_schema(responses=ChangeRequestOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(change_request_document(self.change_request()))


class ChangeRequestApproveApi(ChangeRequestScoped, APIView):
    required_actions = {"POST": Action.CHANGE_APPROVE}

    @extend_schema(request=ReviewInput, responses=ChangeRequestOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = validated_input(ReviewInput, request)
        done = change_requests.change_request_approve(actor=request_actor(request),
                                                      change_request=self.change_request(), **data)
        return Response(change_request_document(done))


class ChangeRequestRejectApi(ChangeRequestScoped, APIView):
    required_actions = {"POST": Action.CHANGE_APPROVE}

    @extend_schema(request=ReviewInput, responses=ChangeRequestOutput)
    def post(self, request: Request, pk: int) -> Response:
        data = validated_input(ReviewInput, request)
        done = change_requests.change_request_reject(actor=request_actor(request),
                                                     change_request=self.change_request(), **data)
        return Response(change_request_document(done))


class ChangeRequestCancelApi(ChangeRequestScoped, APIView):
    required_actions = {"POST": Action.CHANGE_CANCEL}

    @extend_schema(request=None, responses=ChangeRequestOutput)
    def post(self, request: Request, pk: int) -> Response:
        done = change_requests.change_request_cancel(actor=request_actor(request),
                                                     change_request=self.change_request())
        return Response(change_request_document(done))
