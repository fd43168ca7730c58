"""What the review gate (`base.reviews`) needs to know about guarded rollouts: a change request
names one by its id; starting or resuming one is reviewed in its environment, rolling one back or
pausing it is exempt as the kill switch is (it stops a change rather than makes one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from base.models import Environment
from base.reviews import ref_kind
from config.errors import NotFound
from guarded.models import GuardedRollout

__all__ = ["of_rollout", "rollout_target"]


def _rollout(pk: str) -> GuardedRollout:
    found = GuardedRollout.objects.select_related("flag", "environment").filter(pk=int(pk)).first()
    if found is None:
        raise NotFound(f"Guarded rollout {pk} no longer exists.")
    return found


ref_kind("guarded_rollout", encode=lambda rollout: str(rollout.pk), decode=_rollout)


def of_rollout(kwargs: Mapping[str, Any]) -> Sequence[Environment]:
    return [kwargs["rollout"].environment]


def rollout_target(kwargs: Mapping[str, Any]) -> tuple[str, str]:
    return "flag", kwargs["rollout"].flag.key
