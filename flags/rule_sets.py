"""Replacing the whole rule set of a flag in one environment, as a person edits it: a list of
rules in the order they are tried, some changed, some new, some left out.

Every item is checked before anything is written; then the changes go through the
single-rule services in one transaction, so the audit entries and config-version bumps are
those of the individual writes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from django.db import transaction

from audit.types import Actor
from base.keys import Errors
from base.models import Environment
from base.reviews import reviewable
from config.errors import ApplicationError, Conflict, ValidationFailed
from flags.models import Flag, FlagState, Rule
from flags.reviews import flag_target, in_environment
from flags.services import (
    flag_rule_check,
    flag_rule_create,
    flag_rule_delete,
    flag_rule_reorder,
    flag_rule_update,
    rule_values,
)

__all__ = ["flag_rules_replace"]


def _item_errors(index: int, exc: ApplicationError, errors: Errors) -> None:
    details = exc.details if isinstance(exc.details, Mapping) else {}
    for field, messages in details.items():
        texts = messages if isinstance(messages, (list, tuple)) else [messages]
        errors.setdefault(f"rules[{index}].{field}", []).extend(str(m) for m in texts)
    if not details:
        errors.setdefault(f"rules[{index}]", []).append(exc.message)


@reviewable("flag.rules_replace", label="Replace the rules of flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment)
@transaction.atomic
def flag_rules_replace(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    rules: Sequence[Mapping[str, Any]],
    replacing: Collection[str] | None = None,
) -> list[Rule]:
    """Make the rules of `flag` in `environment` exactly `rules`, in that order.

    An item with an `id` (the uid of one of these rules) changes that rule: only the fields it
    gives, and nothing is written when they equal the rule's. An item without `id` adds a
    rule. Rules left out are deleted. With `replacing`, the ids of the rules the caller read,
    a rule added since then makes the call fail instead of being deleted unseen.

    Writes, in this order: changes and additions in the order given, deletions, then the new
    order when it differs. An error about an item is reported as `rules[<index>].<field>`, for
    every bad item at once, and nothing is written.
    """
    state = FlagState.objects.select_for_update().get(flag=flag, environment=environment)
    current = {rule.uid: rule for rule in state.rules.order_by("position", "id")}
    if replacing is not None:
        unseen = sorted(set(current) - set(replacing))
        if unseen:
            raise Conflict(
                "Rules were added since the rules were read; nothing was written. Reload and retry.",
                code="rules_changed", details={"rules": [f"New rule: {uid}." for uid in unseen]},
            )
    errors: Errors = {}
    first: ApplicationError | None = None
    writes: list[tuple[Rule | None, dict[str, Any]]] = []
    seen: set[str] = set()
    for index, item in enumerate(rules):
        data = dict(item)
        uid = data.pop("id", None)
        try:
            if uid is None:
                flag_rule_check(flag=flag, data=data)
                writes.append((None, data))
                continue
            rule = current.get(str(uid))
            if rule is None or uid in seen:
                problem = "appears twice" if uid in seen else f"is not a rule of this flag in {environment.key}"
                raise ValidationFailed("The rules are not valid.", details={"id": [f"Rule '{uid}' {problem}."]})
            seen.add(rule.uid)
            if data and flag_rule_check(flag=flag, data=data, rule=rule) != rule_values(rule):
                writes.append((rule, data))
            else:
                writes.append((rule, {}))
        except ApplicationError as exc:
            first = first or exc
            _item_errors(index, exc, errors)
    if first is not None:
        raise ValidationFailed(first.message, code=first.code, details=errors)
    order: list[str] = []
    for rule_or_none, data in writes:
        if rule_or_none is None:
            order.append(flag_rule_create(actor=actor, flag=flag, environment=environment, **data).uid)
            continue
        if data:
            flag_rule_update(actor=actor, rule=rule_or_none, **data)
        order.append(rule_or_none.uid)
    for uid, rule in current.items():
        if uid not in seen:
            flag_rule_delete(actor=actor, rule=rule)
    if order != list(state.rules.order_by("position", "id").values_list("uid", flat=True)):
        flag_rule_reorder(actor=actor, flag=flag, environment=environment, rule_ids=order)
    return list(state.rules.order_by("position", "id"))
