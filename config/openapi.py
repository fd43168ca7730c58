"""OpenAPI schema generation: unique component names and the bearer token scheme.

Views declare their input and output serializers as nested classes (`FlagStateApi.InputSerializer`);
the default generator names components after the class alone, so two views' `InputSerializer`
would collide. Nested serializers are named after their view here (`FlagStateInput`).
"""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema


class AutoSchema(BaseAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Literal["request", "response"]) -> str:
        parts = type(serializer).__qualname__.split(".")
        if len(parts) < 2 or "<locals>" in parts:
            return str(super().get_serializer_name(serializer, direction))
        return parts[-2].removesuffix("Api") + parts[-1]


class ManagementTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Management API tokens, sent as `Authorization: Bearer sbm_...`."""

    target_class = "base.authentication.ManagementTokenAuthentication"
    name = "managementToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A management API token (`sbm_...`) with read or write scope, created in the admin.",
        }
