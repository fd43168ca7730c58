"""The URLconf of the SDK edge's own request path (``SDK_EDGE_URLCONF``, config/edge.py): the
SDK routes, and JSON answers for the errors no view turned into a response (a Host header
outside ``ALLOWED_HOSTS``, an unexpected exception), in the endpoint's error shape: OFREP's
``{errorCode, errorDetails}`` under ``/ofrep/``, the API's ``{code, message, details}``
elsewhere."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from serving.errors import Rejected, api_error
from serving.ofrep import ofrep_error
from serving.responses import json_response
from serving.urls import urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def _answer(request: HttpRequest, refusal: Rejected) -> HttpResponse:
    shape = ofrep_error if request.path_info.startswith("/ofrep/") else api_error
    return json_response(shape(refusal, {}), refusal.status)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _answer(request, Rejected(400, "bad_request", "The request cannot be served."))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _answer(request, Rejected(403, "forbidden", "The request is not allowed."))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _answer(request, Rejected(404, "not_found", "No endpoint of the API has this address."))


def handler500(request: HttpRequest) -> HttpResponse:
    # Django has logged the exception (logger django.request, with the request id).
    return _answer(request, Rejected(500, "server_error", "The request could not be served; it was logged."))
