"""Checks of the experiment fields that are plain values: the planned effect and the tags.

Pure: each check takes the submitted value and returns the messages for its field (empty when
the value is fine), so the lifecycle services, the forms and the tests share one rule.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["MAX_TAGS", "MAX_TAG_LENGTH", "TAG_RE", "TARGET_MDE_MAX", "target_mde_errors"]

# A relative effect: 0.05 is +5%. Above 1000% is a typo (a percent typed as a fraction).
TARGET_MDE_MAX = 10.0
MAX_TAGS = 20
MAX_TAG_LENGTH = 40
TAG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def target_mde_errors(value: Any) -> list[str]:
    """None clears the target; otherwise a relative effect above 0 and at most 10 (1000%)."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ["Give the target effect as a number, a relative effect such as 0.05 for 5%."]
    if not 0 < value <= TARGET_MDE_MAX:
        return [f"The target effect must be above 0 and at most {TARGET_MDE_MAX:g} (a relative effect: "
                "0.05 is 5%)."]
    return []
