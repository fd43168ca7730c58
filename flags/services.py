"""Every write to environments (with their flag states), flags, states and rules: validated,
in one transaction, audited.

Each write bumps the config version of the environments it touches, which is how the
evaluation caches of every process learn that their snapshot is stale.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.checks import raise_if
from base.environments import environments_bump
from base.keys import Errors, check_key, new_client_key, new_server_key
from base.models import ClientPayload, Environment
from base.reviews import reviewable
from base.writes import audited, reject_unknown
from config.errors import Conflict, ValidationFailed
from flags.documents import environment_document, flag_document, rule_document, segment_document
from flags.engine import validation
from flags.engine.privacy import private_condition_problems
from flags.models import Flag, FlagState, Rule, Segment, Variant
from flags.prerequisites import prerequisite_dependants, prerequisites_check
from flags.reviews import (
    every_environment,
    flag_target,
    in_environment,
    of_rule,
    rule_target,
    segment_target,
    using_segment,
)
from traffic.models import Holdout

RULE_FIELDS = (
    "kind",
    "description",
    "enabled",
    "condition",
    "segments",
    "prerequisites",
    "variant",
    "coverage",
    "hash_attribute",
    "fallback_attribute",
    "seed",
    "variations",
    "weights",
    "experiment_key",
    "namespace",
    "holdout",
    "passthrough",
    "phase",
    "starts_at",
    "ends_at",
)
FLAG_FIELDS = ("name", "description", "owner", "tags", "metadata", "lifecycle", "prerequisites")


def _raise_if(errors: Errors, message: str = "The configuration is not valid.") -> None:
    raise_if(errors, message)


# Environments ------------------------------------------------------------------------


@transaction.atomic
def environment_create(*, actor: Actor, key: str, name: str = "") -> Environment:
    _raise_if(check_key(key))
    if Environment.objects.filter(key=key).exists():
        raise Conflict(f"Environment '{key}' already exists.", code="duplicate_key")
    env = Environment.objects.create(
        key=key, name=name or key.title(), client_key=new_client_key(), server_key=new_server_key()
    )
    for flag in Flag.objects.prefetch_related("variants"):
        first = flag.variants.all()[0].key
        FlagState.objects.create(flag=flag, environment=env, default_variant=first, off_variant=first)
    audit_record(
        actor=actor,
        action="environment.create",
        object_type="environment",
        object_key=key,
        after=environment_document(env),
        environment=key,
    )
    return env


@transaction.atomic
def environment_rotate_keys(*, actor: Actor, environment: Environment) -> Environment:
    """Issue new SDK keys; the old ones stop working at once."""
    before = {"client_key_prefix": environment.client_key[:8]}
    environment.client_key = new_client_key()
    environment.server_key = new_server_key()
    environment.config_version += 1
    environment.save(update_fields=["client_key", "server_key", "config_version", "updated_at"])
    audit_record(
        actor=actor,
        action="environment.rotate_keys",
        object_type="environment",
        object_key=environment.key,
        before=before,
        after={"client_key_prefix": environment.client_key[:8]},
        environment=environment.key,
    )
    return environment


@transaction.atomic
def environment_update(*, actor: Actor, environment: Environment, client_payload: str) -> Environment:
    """Decide what the environment's client keys receive (``base.models.ClientPayload``)."""
    if client_payload not in ClientPayload.values:
        _raise_if({"client_payload": [f"Use one of {', '.join(ClientPayload.values)}."]})
    environment = Environment.objects.select_for_update().get(pk=environment.pk)
    with audited(actor=actor, action="environment.update", object_type="environment", object_key=environment.key,
                 document=lambda: environment_document(environment), environment=environment.key):
        environment.client_payload = client_payload
        environment.config_version += 1
        environment.save(update_fields=["client_payload", "config_version", "updated_at"])
    return environment


# Flags ----------------------------------------------------------------------------------


@transaction.atomic
def flag_create(
    *,
    actor: Actor,
    key: str,
    value_type: str = "boolean",
    variants: Sequence[Mapping[str, Any]] | None = None,
    default_variant: str | None = None,
    off_variant: str | None = None,
    name: str = "",
    description: str = "",
    owner: str = "",
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    lifecycle: str = Flag.Lifecycle.TEMPORARY,
    prerequisites: Sequence[Mapping[str, Any]] = (),
) -> Flag:
    """Create a flag with its variants and a disabled state in every environment.

    A boolean flag without explicit variants gets `off` (false) and `on` (true).
    """
    if variants is None and value_type == "boolean":
        variants = [{"key": "off", "value": False}, {"key": "on", "value": True}]
    variants = list(variants or [])
    errors = check_key(key)
    errors.update(validation.check_variants(value_type, variants))
    if lifecycle not in Flag.Lifecycle.values:
        errors["lifecycle"] = [f"Use one of {', '.join(Flag.Lifecycle.values)}."]
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        errors["tags"] = ["Tags must be a list of strings."]
    metadata = {} if metadata is None else metadata
    errors.update(validation.check_metadata(metadata))
    _raise_if(errors)
    keys = [str(v["key"]) for v in variants]
    off = off_variant or keys[0]
    default = default_variant or off
    _raise_if(validation.check_served_variants(keys, default_variant=default, off_variant=off))
    if Flag.objects.filter(key=key).exists():
        raise Conflict(f"Flag '{key}' already exists.", code="duplicate_key")
    prerequisites_check(key, list(prerequisites))
    try:
        flag = Flag.objects.create(
            key=key,
            value_type=value_type,
            name=name,
            description=description,
            owner=owner,
            tags=list(tags),
            metadata=dict(metadata),
            lifecycle=lifecycle,
            prerequisites=list(prerequisites),
        )
    except IntegrityError as exc:
        raise Conflict(f"Flag '{key}' already exists.", code="duplicate_key") from exc
    Variant.objects.bulk_create(
        Variant(flag=flag, key=v["key"], name=v.get("name", ""), value=v["value"], position=i)
        for i, v in enumerate(variants)
    )
    envs = list(Environment.objects.all())
    FlagState.objects.bulk_create(
        FlagState(flag=flag, environment=e, default_variant=default, off_variant=off) for e in envs
    )
    environments_bump(environment_ids=[e.id for e in envs])
    audit_record(actor=actor, action="flag.create", object_type="flag", object_key=key, after=flag_document(flag))
    return flag


def _variant_keys_in_use(flag: Flag) -> set[str]:
    used: set[str] = set()
    for state in flag.states.prefetch_related("rules"):
        used.update((state.default_variant, state.off_variant))
        for rule in state.rules.all():
            if rule.variant:
                used.add(rule.variant)
            used.update(map(str, rule.variations))
    return used


@reviewable("flag.update", label="Change the variants or prerequisites of flag", target=flag_target,
            refs={"flag": "flag"},
            environments=lambda kw: every_environment(kw) if {"variants", "prerequisites"} & set(kw) else [])
@transaction.atomic
def flag_update(*, actor: Actor, flag: Flag, **changes: Any) -> Flag:
    """Change descriptive fields, prerequisites or variants (`variants=[{key, name, value}]`)."""
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    reject_unknown(changes, (*FLAG_FIELDS, "variants"), what="flag")
    with audited(actor=actor, action="flag.update", object_type="flag", object_key=flag.key,
                 document=lambda: flag_document(flag)):
        _flag_change(flag, changes)
    return flag


def _flag_change(flag: Flag, changes: dict[str, Any]) -> None:
    if "lifecycle" in changes and changes["lifecycle"] not in Flag.Lifecycle.values:
        raise ValidationFailed(
            "Unknown lifecycle.", details={"lifecycle": [f"Use one of {', '.join(Flag.Lifecycle.values)}."]}
        )
    if "metadata" in changes:
        _raise_if(validation.check_metadata(changes["metadata"]))
        changes["metadata"] = dict(changes["metadata"])
    if "prerequisites" in changes:
        prerequisites_check(flag.key, changes["prerequisites"])
    if "variants" in changes:
        variants = list(changes.pop("variants"))
        _raise_if(validation.check_variants(flag.value_type, variants))
        missing = _variant_keys_in_use(flag) - {str(v["key"]) for v in variants}
        if missing:
            raise ValidationFailed(
                "Variants in use cannot be removed.",
                details={"variants": [f"Variant '{k}' is served by a state or rule." for k in sorted(missing)]},
            )
        flag.variants.all().delete()
        Variant.objects.bulk_create(
            Variant(flag=flag, key=v["key"], name=v.get("name", ""), value=v["value"], position=i)
            for i, v in enumerate(variants)
        )
    for field, value in changes.items():
        setattr(flag, field, value)
    flag.save()
    environments_bump(environment_ids=flag.states.values_list("environment_id", flat=True))


@reviewable("flag.archive", label="Archive or restore flag", target=flag_target, refs={"flag": "flag"},
            environments=every_environment)
@transaction.atomic
def flag_archive(*, actor: Actor, flag: Flag, archived: bool = True) -> Flag:
    """Archive (stop serving) or restore a flag; archived flags are kept for history."""
    flag = Flag.objects.select_for_update().get(pk=flag.pk)
    if archived:
        dependants = prerequisite_dependants(flag_key=flag.key)
        active = list(Flag.objects.filter(key__in=dependants, archived_at__isnull=True).values_list("key", flat=True))
        if active:
            raise Conflict("Other flags require this flag.", code="flag_in_use", details={"required_by": active})
    with audited(actor=actor, action="flag.archive" if archived else "flag.restore", object_type="flag",
                 object_key=flag.key, document=lambda: flag_document(flag)):
        flag.archived_at = timezone.now() if archived else None
        flag.save(update_fields=["archived_at", "updated_at"])
        environments_bump(environment_ids=flag.states.values_list("environment_id", flat=True))
    return flag


def _state(flag: Flag, environment: Environment) -> FlagState:
    return FlagState.objects.select_for_update().get(flag=flag, environment=environment)


@reviewable("flag.state_update", label="Change the state of flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment,
            kill_switch=lambda kw: kw.get("default_variant") is None and kw.get("off_variant") is None)
@transaction.atomic
def flag_state_update(
    *,
    actor: Actor,
    flag: Flag,
    environment: Environment,
    enabled: bool | None = None,
    default_variant: str | None = None,
    off_variant: str | None = None,
) -> FlagState:
    """Toggle the kill switch or change the served variants in one environment."""
    state = _state(flag, environment)
    served = {k: v for k, v in (("default_variant", default_variant), ("off_variant", off_variant)) if v is not None}
    action = "flag.toggle" if enabled is not None and not served else "flag.state_update"
    with audited(actor=actor, action=action, object_type="flag", object_key=flag.key,
                 document=lambda: flag_document(flag), environment=environment.key):
        _raise_if(validation.check_served_variants(flag.variants.values_list("key", flat=True), **served))
        if enabled is not None:
            state.enabled = bool(enabled)
        for field, value in served.items():
            setattr(state, field, value)
        state.save()
        environments_bump(environment_ids=[environment.id])
    return state


@reviewable("flag.switch", label="Turn on or off flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment,
            kill_switch=lambda kw: True)
@transaction.atomic
def flag_switch(*, actor: Actor, flag: Flag, environment: Environment, enabled: bool) -> FlagState:
    """The kill switch: turn the flag on or off in one environment after a confirmation.

    Refused when the flag is already in the asked state: someone switched it since the
    confirmation was shown, and switching again would undo their decision.
    """
    if _state(flag, environment).enabled == enabled:
        raise Conflict("The flag changed since the page was shown; nothing was done. Check and retry.",
                       code="flag_already_switched")
    return flag_state_update(actor=actor, flag=flag, environment=environment, enabled=enabled)


# Rules ----------------------------------------------------------------------------------


def _normalise_rule(data: Mapping[str, Any]) -> dict[str, Any]:
    rule = {k: data[k] for k in RULE_FIELDS if k in data}
    if "holdout" in rule and rule["holdout"] is None:
        rule["holdout"] = ""
    for field in ("starts_at", "ends_at"):
        value = rule.get(field)
        if isinstance(value, str):
            try:
                rule[field] = datetime.fromisoformat(value)
            except ValueError as exc:
                raise ValidationFailed("Bad date.", details={field: ["Use an ISO 8601 date-time."]}) from exc
    return rule


def _validate_rule(flag: Flag, rule: Mapping[str, Any]) -> None:
    merged = {"kind": "force", "coverage": 1.0, "hash_attribute": "id", **rule}
    errors = validation.check_rule(
        merged,
        variant_keys=flag.variants.values_list("key", flat=True),
        segment_keys=Segment.objects.values_list("key", flat=True),
        holdout_keys=Holdout.objects.values_list("key", flat=True) if merged.get("holdout") else (),
    )
    if not errors and merged.get("holdout") and Holdout.objects.filter(
            key=merged["holdout"], ended_at__isnull=False).exists():
        errors = {"holdout": [f"Holdout '{merged['holdout']}' has ended: its units are no longer held out."]}
    _raise_if(errors, "The rule is not valid.")
    prereqs = merged.get("prerequisites") or []
    if prereqs:
        prerequisites_check(flag.key, prereqs)


def rule_values(rule: Rule) -> dict[str, Any]:
    """The fields of a rule that writes set, as `flag_rule_check` returns them."""
    values = rule_document(rule)
    values.pop("id")
    values.pop("position")
    values["holdout"] = values.get("holdout") or ""
    return {**values, **_normalise_rule({k: values[k] for k in ("starts_at", "ends_at")})}


def flag_rule_check(*, flag: Flag, data: Mapping[str, Any], rule: Rule | None = None) -> dict[str, Any]:
    """Check a new rule of `flag` (`rule` None) or a change of `rule`; writes nothing.

    Returns the fields to write: those given for a new rule, every field with the change
    applied for an existing one. ValidationFailed names each bad field.
    """
    reject_unknown(data, RULE_FIELDS, what="rule")
    values = _normalise_rule(data) if rule is None else {**rule_values(rule), **_normalise_rule(data)}
    _validate_rule(flag, values)
    return values


@reviewable("flag.rule_create", label="Add a rule to flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment)
@transaction.atomic
def flag_rule_create(
    *, actor: Actor, flag: Flag, environment: Environment, position: int | None = None, **data: Any
) -> Rule:
    """Add a rule; rules are evaluated in order and the first match serves."""
    state = _state(flag, environment)
    rule_data = flag_rule_check(flag=flag, data=data)
    rules = list(state.rules.all())
    index = len(rules) if position is None else max(0, min(position, len(rules)))
    rule = Rule(state=state, uid=f"r_{uuid.uuid4().hex[:12]}", **rule_data)
    rules.insert(index, rule)
    if not rule.seed:
        rule.seed = rule.experiment_key or flag.key if rule.kind == Rule.Kind.EXPERIMENT else flag.key
    with audited(actor=actor, action="flag.rule_create", object_type="flag", object_key=flag.key,
                 document=lambda: flag_document(flag), environment=environment.key):
        rule.save()
        _renumber(rules)
        environments_bump(environment_ids=[environment.id])
    return rule


def _renumber(rules: Sequence[Rule]) -> None:
    for i, rule in enumerate(rules):
        if rule.position != i:
            rule.position = i
            rule.save(update_fields=["position"])


@reviewable("flag.rule_update", label="Change a rule of flag", target=rule_target, refs={"rule": "rule"},
            environments=of_rule)
@transaction.atomic
def flag_rule_update(*, actor: Actor, rule: Rule, **changes: Any) -> Rule:
    rule = Rule.objects.select_for_update().select_related("state__flag", "state__environment").get(pk=rule.pk)
    flag, env = rule.state.flag, rule.state.environment
    current = flag_rule_check(flag=flag, data=changes, rule=rule)
    with audited(actor=actor, action="flag.rule_update", object_type="flag", object_key=flag.key,
                 document=lambda: flag_document(flag), environment=env.key):
        for field, value in current.items():
            setattr(rule, field, value)
        rule.save()
        environments_bump(environment_ids=[env.id])
    return rule


@reviewable("flag.rule_delete", label="Delete a rule of flag", target=rule_target, refs={"rule": "rule"},
            environments=of_rule)
@transaction.atomic
def flag_rule_delete(*, actor: Actor, rule: Rule) -> None:
    rule = Rule.objects.select_for_update().select_related("state__flag", "state__environment").get(pk=rule.pk)
    flag, env, state = rule.state.flag, rule.state.environment, rule.state
    with audited(actor=actor, action="flag.rule_delete", object_type="flag", object_key=flag.key,
                 document=lambda: flag_document(flag), environment=env.key):
        rule.delete()
        _renumber(list(state.rules.all()))
        environments_bump(environment_ids=[env.id])


@reviewable("flag.rule_reorder", label="Reorder the rules of flag", target=flag_target,
            refs={"flag": "flag", "environment": "environment"}, environments=in_environment)
@transaction.atomic
def flag_rule_reorder(*, actor: Actor, flag: Flag, environment: Environment, rule_ids: Sequence[str]) -> None:
    """Put the environment's rules in the given order (a list of every rule id)."""
    state = _state(flag, environment)
    rules = {r.uid: r for r in state.rules.all()}
    if sorted(rule_ids) != sorted(rules):
        raise ValidationFailed(
            "Give every rule id of this flag and environment exactly once.",
            details={"rule_ids": [f"Expected {sorted(rules)}."]},
        )
    with audited(actor=actor, action="flag.rule_reorder", object_type="flag", object_key=flag.key,
                 document=lambda: flag_document(flag), environment=environment.key):
        _renumber([rules[uid] for uid in rule_ids])
        environments_bump(environment_ids=[environment.id])


# Segments -------------------------------------------------------------------------------

SEGMENT_FIELDS = ("name", "description", "kind", "condition", "attribute", "ids", "private")


def _check_segment(data: Mapping[str, Any]) -> None:
    errors: Errors = {}
    kind = data.get("kind", Segment.Kind.CONDITION)
    if kind not in Segment.Kind.values:
        errors["kind"] = [f"Use one of {', '.join(Segment.Kind.values)}."]
    elif kind == Segment.Kind.CONDITION:
        errors.update(validation.check_condition(data.get("condition") or {}))
        if not data.get("condition"):
            errors["condition"] = ["A condition segment needs a condition."]
    else:
        errors.update(validation.check_segment_ids(data.get("ids")))
        if not data.get("attribute"):
            errors["attribute"] = ["Name the attribute the ids are matched against."]
    private = data.get("private", False)
    if not isinstance(private, bool):
        errors["private"] = ["Must be true or false."]
    elif private and kind == Segment.Kind.CONDITION and "condition" not in errors:
        problems = private_condition_problems(data.get("condition") or {})
        if problems:
            errors["condition"] = [
                "A private segment can only test equality and list membership (its values are served hashed); "
                f"not: {', '.join(problems)}."
            ]
    _raise_if(errors, "The segment is not valid.")


def _all_environment_ids() -> list[int]:
    return list(Environment.objects.values_list("id", flat=True))


@transaction.atomic
def segment_create(*, actor: Actor, key: str, name: str = "", **data: Any) -> Segment:
    _raise_if(check_key(key))
    reject_unknown(data, SEGMENT_FIELDS, what="segment")
    _check_segment(data)
    if Segment.objects.filter(key=key).exists():
        raise Conflict(f"Segment '{key}' already exists.", code="duplicate_key")
    segment = Segment.objects.create(key=key, name=name or key, **data)
    environments_bump(environment_ids=_all_environment_ids())
    audit_record(
        actor=actor, action="segment.create", object_type="segment", object_key=key, after=segment_document(segment)
    )
    return segment


@reviewable("segment.update", label="Change segment", target=segment_target, refs={"segment": "segment"},
            environments=using_segment)
@transaction.atomic
def segment_update(*, actor: Actor, segment: Segment, **changes: Any) -> Segment:
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    reject_unknown(changes, SEGMENT_FIELDS, what="segment")
    _check_segment({**segment_document(segment), **changes})
    with audited(actor=actor, action="segment.update", object_type="segment", object_key=segment.key,
                 document=lambda: segment_document(segment)):
        for field, value in changes.items():
            setattr(segment, field, value)
        segment.save()
        environments_bump(environment_ids=_all_environment_ids())
    return segment


def segment_usages(*, segment: Segment) -> list[str]:
    return sorted(
        {
            f"{r.state.flag.key}@{r.state.environment.key}"
            for r in Rule.objects.select_related("state__flag", "state__environment")
            if segment.key in (r.segments or [])
        }
    )


@transaction.atomic
def segment_delete(*, actor: Actor, segment: Segment) -> None:
    used_by = segment_usages(segment=segment)
    if used_by:
        raise Conflict("Rules use this segment.", code="segment_in_use", details={"used_by": used_by})
    with audited(actor=actor, action="segment.delete", object_type="segment", object_key=segment.key,
                 document=lambda: segment_document(segment), deleting=True):
        segment.delete()
        environments_bump(environment_ids=_all_environment_ids())
