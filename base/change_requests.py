"""Reviewing change requests: approve (and apply), reject, cancel, and apply the scheduled ones.

Approving applies the change in the approval's transaction by making the call the change request
stores (`base.reviews`), audited as its author's change approved by the reviewer, then the
approval itself as the reviewer's. The author may not approve or reject their own change request;
the reviewer needs the right to approve in every reviewed environment the change concerns. When
the objects it changes no longer are as they were when it was proposed (their revision moved),
or are gone, the change request becomes conflicting and nothing is applied: its author proposes
it again against the live revision.

A change request with `apply_at` in the future is approved and left for the worker:
`change_requests_apply_due` (Celery beat) applies each due one in its own transaction, with its
row locked, so two workers never apply one twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.services import audit_collect, audit_record
from audit.types import Actor
from base.models import ChangeRequest, Environment
from base.permissions import Action, require
from base.reviews import OPERATIONS, change_request_document, changes_of, decode_payload, passing, reviewed_environments
from config.errors import ApplicationError, Conflict, Forbidden, NotFound, ValidationFailed

__all__ = [
    "change_request_approve",
    "change_request_cancel",
    "change_request_get",
    "change_request_list",
    "change_request_reject",
    "change_requests_apply_due",
    "environment_review_set",
]

logger = logging.getLogger(__name__)

COMMENT_MAX_CHARS = 2000
Status = ChangeRequest.Status


class _Moved(Exception):
    pass


def change_request_list(*, environment: str | None = None, status: str | None = None) -> QuerySet[ChangeRequest]:
    rows = ChangeRequest.objects.select_related("environment")
    if environment:
        rows = rows.filter(environment__key=environment)
    if status:
        if status not in Status.values:
            raise ValidationFailed("Unknown status.", details={"status": [f"Use one of {', '.join(Status.values)}."]})
        rows = rows.filter(status=status)
    return rows


def change_requests_pending(*, object_type: str, object_key: str) -> QuerySet[ChangeRequest]:
    """An object's change requests still to review or to apply, oldest first."""
    return (ChangeRequest.objects.select_related("environment")
            .filter(object_type=object_type, object_key=object_key, status__in=(Status.OPEN, Status.APPROVED))
            .order_by("created_at", "id"))


def change_request_get(*, pk: int) -> ChangeRequest:
    found = ChangeRequest.objects.select_related("environment").filter(pk=pk).first()
    if found is None:
        raise NotFound(f"Change request #{pk} does not exist.")
    return found


def _locked(request: ChangeRequest) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update(of=("self",)).select_related("environment").get(pk=request.pk)


def _user(actor: Actor) -> Any:
    user = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id is not None else None
    if user is None:
        raise Forbidden("Only a signed-in user may review change requests.")
    return user


def _check_comment(comment: str) -> str:
    if not isinstance(comment, str) or len(comment) > COMMENT_MAX_CHARS:
        raise ValidationFailed("The comment is too long.",
                               details={"comment": [f"At most {COMMENT_MAX_CHARS} characters."]})
    return comment


def _check_reviewer(actor: Actor, request: ChangeRequest, verb: str) -> None:
    """The reviewer may approve in every reviewed environment the change concerns, and is not its author."""
    if request.status != Status.OPEN:
        raise Conflict(f"Change request #{request.pk} is {request.status}; only an open one can be {verb}.",
                       code="change_request_not_open", details={"status": request.status})
    user = _user(actor)
    require(user, Action.CHANGE_APPROVE, environment=request.environment)
    operation = OPERATIONS.get(request.operation)
    if operation is not None:
        try:
            kwargs = decode_payload(operation, request.payload)
        except NotFound:
            kwargs = None
        for environment in reviewed_environments(operation, kwargs) if kwargs is not None else []:
            require(user, Action.CHANGE_APPROVE, environment=environment)
    if request.author_id is not None and request.author_id == user.pk:
        raise Forbidden(f"You proposed change request #{request.pk}: another user with the right to approve in "
                        f"{request.environment.key} must review it.", details={"author": request.author_label})


def _apply(request: ChangeRequest, actor: Actor) -> None:
    """Make the stored call as `actor`; `_Moved` (and nothing written) when the objects it changes
    are not at the revision it was proposed against, or it no longer applies."""
    operation = OPERATIONS.get(request.operation)
    if operation is None:
        raise _Moved(f"This service no longer knows the operation '{request.operation}'.")
    try:
        with transaction.atomic(), passing(), audit_collect() as entries:
            kwargs = decode_payload(operation, request.payload)
            operation.function(actor=actor, **kwargs)
            _, revision = changes_of(entries, request.environment.key)
            if revision != request.base_revision:
                raise _Moved("What it changes was changed since it was proposed.")
    except ApplicationError as exc:
        raise _Moved(f"It no longer applies: {exc.message}") from exc
    except ObjectDoesNotExist as exc:
        raise _Moved("Something it changes no longer exists.") from exc


def _audit(actor: Actor, action: str, request: ChangeRequest, before: dict[str, Any] | None) -> None:
    audit_record(actor=actor, action=action, object_type="change_request", object_key=str(request.pk),
                 before=before, after=change_request_document(request), environment=request.environment.key)


def _mark_conflicting(request: ChangeRequest, reason: str) -> None:
    request.status, request.note = Status.CONFLICTING, reason[:500]
    request.save(update_fields=["status", "note"])


def change_request_approve(*, actor: Actor, change_request: ChangeRequest, comment: str = "") -> ChangeRequest:
    """Approve and apply (or, with `apply_at` ahead, approve for the worker to apply then).

    Conflict (409) and the change request marked conflicting when its base revision moved."""
    comment = _check_comment(comment)
    conflict = ""
    with transaction.atomic():
        request = _locked(change_request)
        before = change_request_document(request)
        _check_reviewer(actor, request, "approved")
        now = timezone.now()
        request.reviewer_id, request.reviewer_label = actor.user_id, actor.label[:200]
        request.review_comment, request.reviewed_at = comment, now
        if request.apply_at is not None and request.apply_at > now:
            request.status = Status.APPROVED
        else:
            author = Actor(label=f"{request.author_label}, approved by {actor.label}"[:200],
                           user_id=request.author_id, via=actor.via)
            try:
                _apply(request, author)
            except _Moved as exc:
                conflict = str(exc)
                _mark_conflicting(request, conflict)
            else:
                request.status, request.applied_at = Status.APPLIED, now
        request.save()
        _audit(actor, "change_request.conflict" if conflict else "change_request.approve", request, before)
    if conflict:
        raise Conflict(f"Change request #{request.pk} is conflicting and was not applied. {conflict} "
                       "Propose the change again against the live configuration.",
                       code="change_request_conflicting", details={"status": Status.CONFLICTING})
    return request


@transaction.atomic
def change_request_reject(*, actor: Actor, change_request: ChangeRequest, comment: str = "") -> ChangeRequest:
    comment = _check_comment(comment)
    request = _locked(change_request)
    before = change_request_document(request)
    _check_reviewer(actor, request, "rejected")
    request.status, request.reviewer_id, request.reviewer_label = Status.REJECTED, actor.user_id, actor.label[:200]
    request.review_comment, request.reviewed_at = comment, timezone.now()
    request.save()
    _audit(actor, "change_request.reject", request, before)
    return request


@transaction.atomic
def change_request_cancel(*, actor: Actor, change_request: ChangeRequest) -> ChangeRequest:
    """Withdraw an open or scheduled change request: its author, or someone who may approve it."""
    request = _locked(change_request)
    before = change_request_document(request)
    if request.status not in (Status.OPEN, Status.APPROVED):
        raise Conflict(f"Change request #{request.pk} is {request.status}; only an open or scheduled one can be "
                       "cancelled.", code="change_request_not_open", details={"status": request.status})
    user = _user(actor)
    if request.author_id != user.pk:
        require(user, Action.CHANGE_APPROVE, environment=request.environment)
    request.status, request.note = Status.CANCELLED, f"Cancelled by {actor.label}."[:500]
    request.save(update_fields=["status", "note"])
    _audit(actor, "change_request.cancel", request, before)
    return request


def _apply_due(pk: int, now: datetime) -> str:
    with transaction.atomic():
        request = (ChangeRequest.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("environment").filter(pk=pk, status=Status.APPROVED, apply_at__lte=now).first())
        if request is None:
            return ""  # applied by another worker, or cancelled meanwhile
        before = change_request_document(request)
        who = request.author_label if not request.reviewer_label else \
            f"{request.author_label}, approved by {request.reviewer_label}"
        actor = Actor(label=f"schedule ({who})"[:200], user_id=request.author_id, via="system")
        try:
            _apply(request, actor)
        except _Moved as exc:
            _mark_conflicting(request, str(exc))
            action = "change_request.conflict"
        else:
            request.status, request.applied_at = Status.APPLIED, timezone.now()
            request.save(update_fields=["status", "applied_at"])
            action = "change_request.apply"
        _audit(Actor.system("schedule"), action, request, before)
        return str(request.status)


def change_requests_apply_due(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every approved change request whose time has come, oldest first (Celery beat)."""
    moment = now or timezone.now()
    due = list(ChangeRequest.objects.filter(status=Status.APPROVED, apply_at__lte=moment)
               .order_by("apply_at", "id").values_list("pk", flat=True))
    counts = {"applied": 0, "conflicting": 0}
    for pk in due:
        try:
            status = _apply_due(pk, moment)
        except DatabaseError:
            logger.exception("Change request %s could not be applied; it stays approved.", pk)
            continue
        if status in counts:
            counts[status] += 1
    return counts


@transaction.atomic
def environment_review_set(*, actor: Actor, environment: Environment, requires_review: bool | None = None,
                           review_exempts_kill_switch: bool | None = None) -> Environment:
    """Turn review on or off in an environment, and whether the kill switch is exempt from it."""
    environment = Environment.objects.select_for_update().get(pk=environment.pk)

    def settings() -> dict[str, bool]:
        return {"requires_review": environment.requires_review,
                "review_exempts_kill_switch": environment.review_exempts_kill_switch}

    before = settings()
    if requires_review is not None:
        environment.requires_review = bool(requires_review)
    if review_exempts_kill_switch is not None:
        environment.review_exempts_kill_switch = bool(review_exempts_kill_switch)
    environment.save(update_fields=["requires_review", "review_exempts_kill_switch", "updated_at"])
    audit_record(actor=actor, action="environment.review_settings", object_type="environment",
                 object_key=environment.key, before=before, after=settings(), environment=environment.key)
    return environment
