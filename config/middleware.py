"""Requests refused before any view runs, with a clear JSON error.

- PostgreSQL text and JSON values cannot hold the NUL character; a query parameter or a JSON
  string with one would fail inside the database.
- A management API body above `DATA_UPLOAD_MAX_MEMORY_SIZE` gets 413 `payload_too_large`
  (Django alone would answer an HTML 400).
- A management API address that no route matches (`/api/v1/change-requests/-1`: an id route
  takes digits only) gets a JSON 404 `not_found`, not Django's HTML page.

The SDK endpoints and the events API are left out: the SDK edge (`serving.request`) holds their
requests to its own limits and answers in each protocol's shape (the events API rejects items
with a NUL character one by one and keeps the rest of the batch).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.api import error_body

__all__ = ["NUL_MESSAGE", "SDK_EDGE_PREFIXES", "RequestGuard", "nul_in_url"]

SDK_EDGE_PREFIXES = ("/api/v1/events", "/api/v1/evaluate", "/api/features/", "/api/eval/", "/ofrep/")
MANAGEMENT_PREFIX = "/api/v1/"
API_PREFIX = "/api/"
NUL_MESSAGE = "The request's {location} contains a NUL character (U+0000), which cannot be stored."


def nul_in_url(request: HttpRequest) -> str | None:
    """``path`` or ``query`` when that part of the request holds a NUL character, else None."""
    if "\x00" in request.path:
        return "path"
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query or b"\x00" in unquote_to_bytes(query):
        return "query"
    return None


def _has_nul(request: HttpRequest) -> str | None:
    where = nul_in_url(request)
    if where is not None:
        return where
    if request.method in ("POST", "PUT", "PATCH") and "json" in (request.content_type or ""):
        try:
            body = request.body
        except RequestDataTooBig:
            return None  # _too_large answered the API's 413; other pages get Django's own answer
        if b"\\u0000" in body or b"\x00" in body:
            return "body"
    return None


def _too_large(request: HttpRequest) -> bool:
    if not request.path.startswith(MANAGEMENT_PREFIX):
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
        if request.path.startswith(SDK_EDGE_PREFIXES):
            return self.get_response(request)
        if _too_large(request):
            limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            return JsonResponse(error_body("payload_too_large", f"The body is larger than {limit:,} bytes.",
                                           {"limit_bytes": limit}), status=413)
        where = _has_nul(request)
        if where is not None:
            message = NUL_MESSAGE.format(location=where)
            return JsonResponse(error_body("invalid_characters", message, {"location": where}), status=400)
        response = self.get_response(request)
        if response.status_code == 404 and request.resolver_match is None and request.path.startswith(API_PREFIX):
            return JsonResponse(error_body("not_found", "No endpoint of the API has this address."), status=404)
        return response
