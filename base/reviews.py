"""The review gate: where every change of what an environment serves passes.

A service that changes what an environment serves is declared `@reviewable(...)` (outside its
transaction). When the environment requires review (`Environment.requires_review`), or when the
caller asked for the change to take effect later (`change_context(apply_at=...)`), the call is
not made: it is tried once in a transaction that is rolled back (so the input is validated as the
write validates it, and the audit entries it would write give its diff against the live
revision), stored as a `ChangeRequest`, and `ChangeRequested` (an `Accepted`: the API answers
202) is raised instead. `base.change_requests` applies it later by making the same call.

Calls made by the system (an actor without a user: ramps applied by the worker, guarded rollouts
rolling back) pass straight through. The outermost reviewable call decides for the calls it makes
(starting an experiment writes its rule: one change request, or none). The kill switch, and
other calls that stop a change rather than make one (rolling a guarded rollout back), pass too,
unless the environment's `review_exempts_kill_switch` is off.

The payload of a change request is the call's keyword arguments as JSON: model instances by
their key (`refs`: argument name -> kind, see `ref_kind`), everything else as JSON values, turned
back by `decoders` where the service needs more than JSON (dates inside dataclasses...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from audit.diff import json_diff
from audit.models import AuditEntry
from audit.services import audit_collect, audit_record
from audit.types import Actor
from base.models import ChangeRequest, Environment
from config.errors import Accepted, NotFound, ValidationFailed

__all__ = ["OPERATIONS", "ChangeContext", "ChangeRequested", "Operation", "Proposal", "change_context",
           "change_request_document", "changes_of", "decode_payload", "passing", "ref_kind", "reviewable"]

P = ParamSpec("P")
R = TypeVar("R")

COMMENT_MAX_CHARS = 2000


@dataclass(slots=True)
class ChangeContext:
    """What the caller says about its writes: a comment for reviewers, a time to apply them at;
    `proposed` tells the caller afterwards whether a write took them (became a change request)."""

    comment: str = ""
    apply_at: datetime | None = None
    proposed: bool = False


_context: ContextVar[ChangeContext | None] = ContextVar("change_context", default=None)
_passing: ContextVar[bool] = ContextVar("review_passing", default=False)


@contextmanager
def change_context(*, comment: str = "", apply_at: datetime | None = None) -> Iterator[ChangeContext]:
    context = ChangeContext(comment=comment, apply_at=apply_at)
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


@contextmanager
def passing() -> Iterator[None]:
    """Writes inside the block are made, not reviewed (a change being tried or applied)."""
    token = _passing.set(True)
    try:
        yield
    finally:
        _passing.reset(token)


# Kinds of model arguments: how each is named in a payload and found again.
_KINDS: dict[str, tuple[Callable[[Any], str], Callable[[str], Any]]] = {}


def ref_kind(kind: str, *, encode: Callable[[Any], str], decode: Callable[[str], Any]) -> None:
    _KINDS[kind] = (encode, decode)


def _environment_get(key: str) -> Environment:
    found = Environment.objects.filter(key=key).first()
    if found is None:
        raise NotFound(f"Environment '{key}' no longer exists.")
    return found


ref_kind("environment", encode=lambda env: env.key, decode=_environment_get)


@dataclass(frozen=True)
class Operation:
    """A reviewable service: how to name its call, and which environments it changes."""

    name: str
    function: Callable[..., Any]
    label: str
    environments: Callable[[Mapping[str, Any]], Sequence[Environment]]
    target: Callable[[Mapping[str, Any]], tuple[str, str]]
    refs: Mapping[str, str] = field(default_factory=dict)
    decoders: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    kill_switch: Callable[[Mapping[str, Any]], bool] | None = None


OPERATIONS: dict[str, Operation] = {}


class ChangeRequested(Accepted):
    """The write became a change request (to review, or to apply at its time)."""

    code = "change_requested"

    def __init__(self, proposal: Proposal) -> None:
        request = proposal.change_request
        if request.status == ChangeRequest.Status.OPEN:
            message = (f"{request.environment.key} requires review: the change is change request #{request.pk}, "
                       "served once another publisher approves it.")
        else:
            message = f"The change is scheduled as change request #{request.pk}."
        super().__init__(message, code=self.code)
        self.proposal = proposal

    @property
    def change_request(self) -> ChangeRequest:
        """The change request, stored again if a transaction around the write rolled it back."""
        proposal = self.proposal
        if not ChangeRequest.objects.filter(pk=proposal.change_request.pk).exists():
            proposal.change_request = _store(proposal.change_request, proposal.actor)
        return proposal.change_request

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "change_request": change_request_document(self.change_request)}


@dataclass
class Proposal:
    change_request: ChangeRequest
    actor: Actor


def _json(value: Any) -> Any:
    def default(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.asdict(item)
        return DjangoJSONEncoder().default(item)

    return json.loads(json.dumps(value, default=default))


def _encode(operation: Operation, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name == "actor":
            continue
        kind = operation.refs.get(name)
        payload[name] = _KINDS[kind][0](value) if kind is not None and value is not None else _json(value)
    return payload


def decode_payload(operation: Operation, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The call's keyword arguments again (NotFound when an object it names is gone)."""
    kwargs: dict[str, Any] = {}
    for name, value in payload.items():
        kind = operation.refs.get(name)
        if kind is not None and value is not None:
            kwargs[name] = _KINDS[kind][1](value)
        elif name in operation.decoders:
            kwargs[name] = operation.decoders[name](value)
        else:
            kwargs[name] = value
    return kwargs


def _in_environment(document: Any, environment: str) -> Any:
    """A document as one environment sees it: only its entry of per-environment states."""
    if isinstance(document, dict) and isinstance(document.get("environments"), dict):
        return {**document, "environments": {k: v for k, v in document["environments"].items() if k == environment}}
    return document


def changes_of(entries: Iterable[AuditEntry], environment: str) -> tuple[list[dict[str, Any]], str]:
    """What a write changed, object by object (the first `before`, the last `after` and their
    diff, as `environment` sees them), and the revision it started from (a digest of the
    `before` documents of the objects that existed)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        key = (entry.object_type, entry.object_key)
        if key not in objects:
            objects[key] = {"object_type": entry.object_type, "object_key": entry.object_key, "actions": [],
                            "before": _in_environment(entry.before, environment)}
        objects[key]["after"] = _in_environment(entry.after, environment)
        if entry.action not in objects[key]["actions"]:
            objects[key]["actions"].append(entry.action)
    changes = []
    for item in objects.values():
        item["diff"] = json_diff(item["before"], item["after"])
        changes.append(_json(item))
    # Objects the write creates have no revision to start from (and may get generated keys).
    base = sorted([c["object_type"], c["object_key"], c["before"]] for c in changes if c["before"] is not None)
    revision = hashlib.sha256(json.dumps(base, sort_keys=True, default=str).encode()).hexdigest()
    return changes, revision


class _Rollback(Exception):
    pass


def _try(operation: Operation, kwargs: Mapping[str, Any], environment: str) -> tuple[list[dict[str, Any]], str]:
    """Make the call in a transaction rolled back afterwards; what it would change."""
    result: tuple[list[dict[str, Any]], str] = ([], "")
    try:
        with transaction.atomic(), passing(), audit_collect() as entries:
            operation.function(**kwargs)
            result = changes_of(entries, environment)
            raise _Rollback
    except _Rollback:
        pass
    return result


def change_request_document(request: ChangeRequest) -> dict[str, Any]:
    """A change request as the API and the audit log show it."""
    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": request.pk, "environment": request.environment.key, "status": request.status,
        "operation": request.operation, "summary": request.summary,
        "object": {"type": request.object_type, "key": request.object_key},
        "comment": request.comment, "author": request.author_label, "reviewer": request.reviewer_label or None,
        "review_comment": request.review_comment, "note": request.note, "base_revision": request.base_revision,
        "apply_at": moment(request.apply_at), "created_at": moment(request.created_at),
        "reviewed_at": moment(request.reviewed_at), "applied_at": moment(request.applied_at),
        "payload": request.payload, "changes": request.changes,
    }


def _store(request: ChangeRequest, actor: Actor) -> ChangeRequest:
    with transaction.atomic():
        request.pk = None
        request.save()
        action = "change_request.open" if request.status == ChangeRequest.Status.OPEN else "change_request.schedule"
        audit_record(actor=actor, action=action, object_type="change_request", object_key=str(request.pk),
                     after=change_request_document(request), environment=request.environment.key)
    return request


def _propose(operation: Operation, kwargs: Mapping[str, Any], environment: Environment, *, reviewed: bool,
             context: ChangeContext) -> Proposal:
    actor: Actor = kwargs["actor"]
    changes, revision = _try(operation, kwargs, environment.key)
    object_type, object_key = operation.target(kwargs)
    request = ChangeRequest(
        environment=environment, operation=operation.name, object_type=object_type, object_key=object_key[:200],
        summary=f"{operation.label} {object_key} in {environment.key}"[:300], payload=_encode(operation, kwargs),
        changes=changes, base_revision=revision, comment=context.comment[:COMMENT_MAX_CHARS],
        status=ChangeRequest.Status.OPEN if reviewed else ChangeRequest.Status.APPROVED,
        author_id=actor.user_id, author_label=actor.label[:200], apply_at=context.apply_at,
    )
    return Proposal(change_request=_store(request, actor), actor=actor)


def reviewed_environments(operation: Operation, kwargs: Mapping[str, Any]) -> list[Environment]:
    """The environments the call changes that require review of it."""
    kill_switch = operation.kill_switch is not None and operation.kill_switch(kwargs)
    ids = [env.pk for env in operation.environments(kwargs)]
    # Read now: the caller's instances may predate a change of the settings.
    current = Environment.objects.filter(pk__in=ids, requires_review=True).order_by("key")
    return [env for env in current if not (kill_switch and env.review_exempts_kill_switch)]


def reviewable(
    name: str, *, label: str, environments: Callable[[Mapping[str, Any]], Sequence[Environment]],
    target: Callable[[Mapping[str, Any]], tuple[str, str]], refs: Mapping[str, str] | None = None,
    decoders: Mapping[str, Callable[[Any], Any]] | None = None,
    kill_switch: Callable[[Mapping[str, Any]], bool] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a service a change of what environments serve (see the module's docstring)."""
    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        operation = Operation(name=name, function=function, label=label, environments=environments, target=target,
                              refs=dict(refs or {}), decoders=dict(decoders or {}), kill_switch=kill_switch)
        OPERATIONS[name] = operation

        @wraps(function)
        def gate(*args: P.args, **kwargs: P.kwargs) -> R:
            context = _context.get() or ChangeContext()
            actor = kwargs.get("actor")
            if _passing.get() or not isinstance(actor, Actor) or (actor.user_id is None and context.apply_at is None):
                with passing():
                    return function(*args, **kwargs)
            reviewed = reviewed_environments(operation, kwargs)
            if not reviewed and context.apply_at is None:
                with passing():
                    return function(*args, **kwargs)
            concerned = reviewed or list(operation.environments(kwargs))
            if not concerned:
                raise ValidationFailed("Only a change of what an environment serves can be scheduled.",
                                       details={"apply_at": ["This change applies at once; leave apply_at out."]})
            proposal = _propose(operation, kwargs, concerned[0], reviewed=bool(reviewed), context=context)
            context.proposed = True
            raise ChangeRequested(proposal)

        return gate

    return decorate
