from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEntry
from audit.selectors import audit_list
from config.api import ListApi


class AuditListApi(ListApi):
    # An action of `base.permissions` (which sits above this app), named by its value.
    required_actions = {"GET": "audit.view"}

    class OutputSerializer(serializers.ModelSerializer[AuditEntry]):
        class Meta:
            model = AuditEntry
            fields = [
                "id",
                "created_at",
                "actor_label",
                "via",
                "action",
                "object_type",
                "object_key",
                "environment",
                "diff",
                "before",
                "after",
            ]

    @extend_schema(
        parameters=[
            OpenApiParameter("object_type", str),
            OpenApiParameter("object_key", str),
            OpenApiParameter("action", str),
        ],
        responses=OutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        params: Any = request.query_params
        entries = audit_list(
            object_type=params.get("object_type"), object_key=params.get("object_key"), action=params.get("action")
        )
        return self.page_response(request, entries, lambda page: self.OutputSerializer(page, many=True).data)
