"""The prerequisite graph: which flags a flag (or one of its rules) requires to serve first.

Writes of flags and rules check their prerequisites here: every required flag exists, no
chain of requirements leads back to the flag being written, and no chain is longer than
evaluation can follow comfortably (`flags.engine.limits.PREREQUISITE_MAX_CHAIN`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from base.checks import raise_if
from config.errors import ValidationFailed
from flags.engine import validation
from flags.engine.limits import PREREQUISITE_MAX_CHAIN
from flags.models import Flag, Rule


def prerequisite_edges(*, replace: tuple[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Flag key -> the flag keys it or its rules require (with `replace`'s extra requirements)."""
    edges: dict[str, list[str]] = {}
    for key, prereqs in Flag.objects.values_list("key", "prerequisites"):
        edges.setdefault(key, []).extend(p["flag"] for p in prereqs or [] if isinstance(p, dict) and "flag" in p)
    for flag_key, prereqs in Rule.objects.values_list("state__flag__key", "prerequisites"):
        edges.setdefault(flag_key, []).extend(p["flag"] for p in prereqs or [] if isinstance(p, dict) and "flag" in p)
    if replace is not None:
        key, extra = replace
        edges.setdefault(key, []).extend(extra)
    return edges


def prerequisite_dependants(*, flag_key: str) -> list[str]:
    """The other flags that require `flag_key`, themselves or through a rule, sorted."""
    return sorted(key for key, parents in prerequisite_edges().items() if flag_key in parents and key != flag_key)


def _check_no_cycle(flag_key: str, prerequisites: Sequence[Mapping[str, Any]]) -> None:
    extra = [str(p["flag"]) for p in prerequisites]
    cycle = validation.find_cycle(prerequisite_edges(replace=(flag_key, extra)))
    if cycle:
        raise ValidationFailed(
            "Prerequisites would form a cycle.",
            code="prerequisite_cycle",
            details={"prerequisites": [" -> ".join(cycle)]},
        )


def _check_chain(flag_key: str, prerequisites: Sequence[Mapping[str, Any]]) -> None:
    extra = [str(p["flag"]) for p in prerequisites]
    chain = validation.longest_chain_through(prerequisite_edges(replace=(flag_key, extra)), flag_key)
    if len(chain) - 1 > PREREQUISITE_MAX_CHAIN:
        raise ValidationFailed(
            f"Prerequisites would chain more than {PREREQUISITE_MAX_CHAIN} flags.",
            details={"prerequisites": [
                f"A chain of {len(chain) - 1} prerequisites, at most {PREREQUISITE_MAX_CHAIN}: {' -> '.join(chain)}"
            ]},
        )


def prerequisites_check(flag_key: str, prerequisites: Any, field: str = "prerequisites") -> None:
    """ValidationFailed when a prerequisite is malformed, names an unknown flag, closes a cycle
    or makes a chain of flags requiring one another longer than `PREREQUISITE_MAX_CHAIN`."""
    known = Flag.objects.values_list("key", flat=True)
    raise_if(validation.check_prerequisites(prerequisites, flag_key=flag_key, known_flags=known, field=field),
             "The configuration is not valid.")
    _check_no_cycle(flag_key, prerequisites)
    _check_chain(flag_key, prerequisites)
