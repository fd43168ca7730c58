"""The management API's way to comment a write or to schedule it: the query parameters `comment`
and `apply_at` of any write request (`POST`, `PUT`, `PATCH`, `DELETE` under `/api/`), whatever
its body. The middleware checks them and puts them in `base.reviews.change_context` for the
request; the review gate reads them when it turns the write into a change request. A write given
`apply_at` that does not become a change request is undone and refused (it cannot wait), so the
parameter is never silently ignored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from base.reviews import COMMENT_MAX_CHARS, change_context
from config.api import error_body

__all__ = ["APPLY_AT_MAX_DAYS", "ChangeContextMiddleware", "parse_apply_at"]

APPLY_AT_MAX_DAYS = 366
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parse_apply_at(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 date-time with its offset, in the future and at most a year ahead; ValueError
    saying what is wrong otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError("Use an ISO 8601 date-time with its offset, e.g. 2027-01-31T09:00:00+00:00.") from exc
    if moment.tzinfo is None:
        raise ValueError("Give the offset (e.g. +00:00): a time without one is ambiguous.")
    current = now or timezone.now()
    if moment <= current:
        raise ValueError("The time has passed: give a time in the future, or leave apply_at out to apply now.")
    if moment > current + timedelta(days=APPLY_AT_MAX_DAYS):
        raise ValueError(f"At most {APPLY_AT_MAX_DAYS} days ahead.")
    return moment


class ChangeContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in _WRITES or not request.path.startswith("/api/"):
            return self.get_response(request)
        comment = request.GET.get("comment", "")
        errors: dict[str, list[str]] = {}
        if len(comment) > COMMENT_MAX_CHARS:
            errors["comment"] = [f"At most {COMMENT_MAX_CHARS} characters."]
        apply_at = None
        if "apply_at" in request.GET:
            try:
                apply_at = parse_apply_at(request.GET["apply_at"])
            except ValueError as exc:
                errors["apply_at"] = [str(exc)]
        if errors:
            return JsonResponse(error_body("validation_error", "The request is not valid.", errors), status=400)
        if apply_at is None:
            with change_context(comment=comment):
                return self.get_response(request)
        # A write that cannot wait (creating a flag, say) would apply at once: undo it and say so.
        with transaction.atomic(), change_context(comment=comment, apply_at=apply_at) as context:
            response = self.get_response(request)
            if response.status_code < 300 and not context.proposed:
                transaction.set_rollback(True)
                return JsonResponse(error_body("validation_error", "This write cannot be scheduled.", {
                    "apply_at": ["Only a change of what an environment serves can be scheduled; leave apply_at "
                                 "out to apply it now."]}), status=400)
            return response
