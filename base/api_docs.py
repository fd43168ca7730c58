"""The OpenAPI schema and its Swagger UI, behind a login unless `API_DOCS_ACCESS` is "public".

The schema lists every endpoint and field, which helps an attacker as much as a developer,
so by default only a staff login (the admin session) or a management token of a staff member
opens it. A browser without a session is sent to the login page and back; an API client gets a 401.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from base.permissions import is_staff_member


class DocsAccess(permissions.BasePermission):
    """Anyone when the docs are public; otherwise a staff member, signed in or through a token."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if settings.API_DOCS_ACCESS == "public":
            return True
        user: Any = request.user
        if user is None or not user.is_authenticated:
            return False
        return is_staff_member(user)


class SchemaView(SpectacularAPIView):
    permission_classes = [DocsAccess]


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI whose start-up script is a separate request (`?script`): the page holds no
    inline script or style, as the Content-Security-Policy asks."""

    permission_classes = [DocsAccess]
    template_name = "api_docs/swagger_ui.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated and user.is_staff
        if settings.API_DOCS_ACCESS != "public" and not signed_in and "HTTP_AUTHORIZATION" not in request.META:
            return redirect_to_login(request.get_full_path())
        return super().dispatch(request, *args, **kwargs)
