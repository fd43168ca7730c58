"""Every request has an id: the caller's `X-Request-ID` when it is a sane one, else a new one.
It is returned in the response's `X-Request-ID` header and put on every log record written
while the request is served (`RequestIdFilter`), so one request's lines can be found together
in the logs of the service and of whatever called it."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

__all__ = ["HEADER", "RequestIdFilter", "RequestIdMiddleware", "current_request_id"]

HEADER = "X-Request-ID"
# Ids from callers are kept when they look like ids: letters, digits and . _ : -, at most 128.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    """The id of the request being served ("" outside a request)."""
    return _current.get()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex
        # Kept until the response is finished (Django logs a failed request after the middleware
        # has returned), then cleared by `_clear`.
        _current.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


@receiver(request_finished)
def _clear(**_: object) -> None:
    _current.set("")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or "-"
        return True
