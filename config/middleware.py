"""Requests refused before any view runs, with a clear JSON error.

- PostgreSQL text and JSON values cannot hold the NUL character; a query parameter or a JSON
  string with one would fail inside the database. The events API is left out: it rejects such
  items one by one and keeps the rest of the batch.
- A management API body above `DATA_UPLOAD_MAX_MEMORY_SIZE` gets 413 `payload_too_large`
  (Django alone would answer an HTML 400). The SDK endpoints and the events API answer 413 in
  their own shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.api import error_body

EXEMPT_PREFIXES = ("/api/v1/events",)
MANAGEMENT_PREFIX = "/api/v1/"
SDK_PATHS = ("/api/v1/evaluate",)
OFREP_PREFIX = "/ofrep/"
OFREP_SINGLE = "/ofrep/v1/evaluate/flags/"


def _has_nul(request: HttpRequest) -> str | None:
    if "\x00" in request.path:
        return "path"
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query or b"\x00" in unquote_to_bytes(query):
        return "query"
    if request.method in ("POST", "PUT", "PATCH") and "json" in (request.content_type or ""):
        try:
            body = request.body
        except RequestDataTooBig:
            return None  # the view answers 413 in its own shape
        if b"\\u0000" in body or b"\x00" in body:
            return "body"
    return None


def _too_large(request: HttpRequest) -> bool:
    path = request.path
    if not path.startswith(MANAGEMENT_PREFIX) or path.startswith(EXEMPT_PREFIXES + SDK_PATHS):
        return False
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


class RequestGuard:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _too_large(request):
            limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            return JsonResponse(error_body("payload_too_large", f"The body is larger than {limit:,} bytes.",
                                           {"limit_bytes": limit}), status=413)
        if not request.path.startswith(EXEMPT_PREFIXES):
            where = _has_nul(request)
            if where is not None:
                message = f"The request's {where} contains a NUL character (U+0000), which cannot be stored."
                if request.path.startswith(OFREP_PREFIX):
                    # OpenFeature's remote evaluation protocol has an error shape of its own.
                    body = {"errorCode": "INVALID_CONTEXT", "errorDetails": message}
                    key = request.path.removeprefix(OFREP_SINGLE).strip("/")
                    if request.path.startswith(OFREP_SINGLE) and key and where != "path":
                        body = {"key": key, **body}
                    return JsonResponse(body, status=400)
                return JsonResponse(error_body("invalid_characters", message, {"location": where}), status=400)
        return self.get_response(request)
