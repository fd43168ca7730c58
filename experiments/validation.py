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


def normalize_tags(value: Any) -> Any:
    """Tags trimmed, lowercased and without repeats (first one kept); anything that is not a
    list of strings is returned as it is, for `tags_errors` to reject."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        return value
    seen: dict[str, None] = {}
    for tag in value:
        seen.setdefault(tag.strip().lower(), None)
    return list(seen)


def tags_errors(value: Any) -> list[str]:
    """Up to MAX_TAGS slugs (lowercase letters, digits, single hyphens or underscores inside) of
    at most MAX_TAG_LENGTH characters each."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        return ["Give the tags as a list of strings, e.g. [\"checkout\", \"q3-growth\"]."]
    errors: list[str] = []
    if len(value) > MAX_TAGS:
        errors.append(f"Give at most {MAX_TAGS} tags ({len(value)} given).")
    for tag in value:
        if len(tag) > MAX_TAG_LENGTH:
            errors.append(f"'{tag[:MAX_TAG_LENGTH]}…' is longer than {MAX_TAG_LENGTH} characters.")
        elif not TAG_RE.match(tag):
            errors.append(f"'{tag}' is not a tag: use lowercase letters and digits, joined by single "
                          "hyphens or underscores (e.g. q3-growth).")
    return errors
