"""What the review gate (`base.reviews`) needs to know about flags, rules and segments: how a
change request names them, and which environments a change of each concerns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from base.models import Environment
from base.reviews import ref_kind
from config.errors import NotFound
from flags.models import Flag, Rule, Segment

__all__ = ["every_environment", "flag_target", "in_environment", "of_rule", "rule_target",
           "segment_target", "using_segment"]


def _flag(key: str) -> Flag:
    found = Flag.objects.filter(key=key).first()
    if found is None:
        raise NotFound(f"Flag '{key}' no longer exists.")
    return found


def _rule(uid: str) -> Rule:
    found = Rule.objects.select_related("state__flag", "state__environment").filter(uid=uid).first()
    if found is None:
        raise NotFound(f"Rule '{uid}' no longer exists.")
    return found


def _segment(key: str) -> Segment:
    found = Segment.objects.filter(key=key).first()
    if found is None:
        raise NotFound(f"Segment '{key}' no longer exists.")
    return found


ref_kind("flag", encode=lambda flag: flag.key, decode=_flag)
ref_kind("rule", encode=lambda rule: rule.uid, decode=_rule)
ref_kind("segment", encode=lambda segment: segment.key, decode=_segment)


def in_environment(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    return [kwargs["environment"]]


def of_rule(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    return [kwargs["rule"].state.environment]


def every_environment(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    return list(Environment.objects.all())


def using_segment(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    """The environments whose rules use the segment (a change of it changes what they serve)."""
    key = kwargs["segment"].key
    return list(Environment.objects.filter(flag_states__rules__segments__contains=[key]).distinct())


def flag_target(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    return "flag", kwargs["flag"].key


def rule_target(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    return "flag", kwargs["rule"].state.flag.key


def segment_target(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    return "segment", kwargs["segment"].key
