"""Reads of flag configuration (no writes here)."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from django.db.models import Max, Prefetch, QuerySet

from base.models import Environment
from config.errors import NotFound
from flags.engine.attributes import AttributeDefinition as AttributeSpec
from flags.mappers import attribute_from_row
from flags.models import AttributeDefinition, EnvironmentUsage, Flag, FlagState, FlagUsage, Rule, Segment


def environment_get(*, key: str) -> Environment:
    env = Environment.objects.filter(key=key).first()
    if env is None:
        raise NotFound(f"Environment '{key}' does not exist.", code="environment_not_found")
    return env


def environment_list() -> QuerySet[Environment]:
    return Environment.objects.all()


def environment_keys() -> list[str]:
    return list(Environment.objects.values_list("key", flat=True))


def flag_list(*, archived: bool | None = False, tag: str | None = None, search: str | None = None) -> QuerySet[Flag]:
    qs = Flag.objects.prefetch_related(
        "variants",
        Prefetch("states", queryset=FlagState.objects.select_related("environment").prefetch_related("rules")),
    )
    if archived is not None:
        qs = qs.filter(archived_at__isnull=not archived)
    if tag:
        qs = qs.filter(tags__contains=[tag])
    if search:
        qs = qs.filter(key__icontains=search)
    return qs


def flag_get(*, key: str) -> Flag:
    flag = flag_list(archived=None).filter(key=key).first()
    if flag is None:
        raise NotFound(f"Flag '{key}' does not exist.", code="flag_not_found")
    return flag


def rule_get(*, flag: Flag, environment: Environment, uid: str) -> Rule:
    rule = Rule.objects.filter(state__flag=flag, state__environment=environment, uid=uid).first()
    if rule is None:
        raise NotFound(f"Rule '{uid}' does not exist.", code="rule_not_found")
    return rule


def rule_list(*, flag: Flag, environment: Environment) -> QuerySet[Rule]:
    """The rules of a flag in one environment, in the order they are tried."""
    return Rule.objects.filter(state__flag=flag, state__environment=environment).order_by("position", "id")


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.all()


def segment_get(*, key: str) -> Segment:
    segment = Segment.objects.filter(key=key).first()
    if segment is None:
        raise NotFound(f"Segment '{key}' does not exist.", code="segment_not_found")
    return segment


# Usage (what ``serving.usage`` recorded) --------------------------------------------------------


def flag_last_evaluated(keys: Sequence[str]) -> Mapping[str, datetime]:
    """Flag key -> the latest server-side evaluation in any environment, for flags with one
    (the default evaluation source of ``flags.staleness``)."""
    rows = (
        FlagUsage.objects.filter(flag__key__in=list(keys)).values("flag__key").annotate(last=Max("last_evaluated_at"))
    )
    return {row["flag__key"]: row["last"] for row in rows}


def flag_usage_by_environment(*, flag_ids: Iterable[int]) -> dict[int, dict[str, datetime]]:
    """Flag id -> {environment key: last evaluated}, for the flags given."""
    out: dict[int, dict[str, datetime]] = {}
    for flag_id, env_key, moment in FlagUsage.objects.filter(flag_id__in=list(flag_ids)).values_list(
        "flag_id", "environment__key", "last_evaluated_at"
    ):
        out.setdefault(flag_id, {})[env_key] = moment
    return out


def payload_fetches() -> dict[str, datetime]:
    """Environment key -> when an SDK last fetched its GrowthBook payload."""
    return dict(EnvironmentUsage.objects.values_list("environment__key", "payload_fetched_at"))


# Prerequisites ---------------------------------------------------------------------------------


def flags_requiring(*, flag: Flag) -> list[Flag]:
    """Flags with `flag` among their own prerequisites, by key."""
    return list(Flag.objects.filter(prerequisites__contains=[{"flag": flag.key}]).order_by("key"))


def rules_requiring(*, flag: Flag) -> list[Rule]:
    """Rules (of any flag and environment) with `flag` among their prerequisites."""
    return list(
        Rule.objects.filter(prerequisites__contains=[{"flag": flag.key}]).select_related(
            "state__flag", "state__environment"
        )
    )


def attribute_list() -> QuerySet[AttributeDefinition]:
    return AttributeDefinition.objects.all()


def attribute_get(*, name: str) -> AttributeDefinition:
    attribute = AttributeDefinition.objects.filter(name=name).first()
    if attribute is None:
        raise NotFound(f"Attribute '{name}' is not defined.", code="attribute_not_found")
    return attribute


def attribute_specs() -> list[AttributeSpec]:
    """Every definition as the pure engine's type, for the condition builder and its checks."""
    return [attribute_from_row(a) for a in AttributeDefinition.objects.all()]
