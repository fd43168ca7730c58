"""Bucketing: turning a unit hash into a variation, GrowthBook-compatible.

A unit's hash ``n`` in [0, 1) picks the first variation whose range holds it.
Ranges are laid out from the weights; coverage shrinks every range from its
own start, so raising coverage only grows ranges and never moves a unit that
was already bucketed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from traffic.assignment.hashing import gb_hash, hash_v1
from traffic.assignment.types import BucketRange, Filter, Namespace

__all__ = [
    "HOLDOUT_VARIATIONS",
    "WEIGHT_SUM_MAX",
    "WEIGHT_SUM_MIN",
    "choose_variation",
    "get_bucket_ranges",
    "get_equal_weights",
    "hash_string",
    "holdout_experiment_key",
    "holdout_filter",
    "holdout_members_filter",
    "in_namespace",
    "in_range",
    "is_filtered_out",
    "is_hashable",
    "is_included_in_rollout",
    "js_number_to_string",
    "namespace_filter",
    "resolve_hash_value",
    "valid_weights",
]

# Weights are accepted when they sum to 1 within this band, as GrowthBook does.
WEIGHT_SUM_MIN = 0.99
WEIGHT_SUM_MAX = 1.01


def get_equal_weights(n: int) -> list[float]:
    """``n`` equal weights summing to 1 (empty for ``n < 1``)."""
    if n < 1:
        return []
    return [1 / n] * n


def _is_weight(w: object) -> bool:
    return isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0


def valid_weights(weights: Sequence[float] | None, n: int) -> bool:
    """One finite non-negative weight per variation, summing to about 1."""
    if weights is None or len(weights) != n:
        return False
    if not all(_is_weight(w) for w in weights):
        return False
    return WEIGHT_SUM_MIN <= sum(weights) <= WEIGHT_SUM_MAX


def get_bucket_ranges(
    n: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[BucketRange]:
    """Hash ranges of ``n`` variations; invalid weights fall back to equal ones."""
    coverage = min(max(coverage, 0.0), 1.0)
    used: Sequence[float] = weights if weights is not None and valid_weights(weights, n) else get_equal_weights(n)
    ranges: list[BucketRange] = []
    cumulative: float = 0
    for w in used:
        start = cumulative
        cumulative += w
        # The same float operations as the SDKs, so boundaries agree bit for bit.
        ranges.append((start, start + coverage * w))
    return ranges


def in_range(n: float, bucket_range: BucketRange) -> bool:
    """Whether ``n`` lies in the half-open range [start, end)."""
    return bucket_range[0] <= n < bucket_range[1]


def choose_variation(n: float, ranges: Sequence[BucketRange]) -> int:
    """Index of the first range holding ``n``, or -1 when none does."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def in_namespace(user_id: str, namespace: Namespace | Sequence[object]) -> bool:
    """Whether a unit falls in a namespace's share of its layer."""
    if isinstance(namespace, Namespace):
        ns_id, start, end = namespace.id, namespace.start, namespace.end
    else:
        ns_id, start, end = str(namespace[0]), float(namespace[1]), float(namespace[2])  # type: ignore[arg-type]
    n = hash_v1("__" + ns_id, user_id)
    return start <= n < end


def js_number_to_string(value: float) -> str:
    """Format a number as JavaScript's ``String(number)`` does.

    Python's ``repr`` already yields the shortest round-tripping digits; only
    their layout differs (JS writes plain digits for exponents up to 21 and
    ``1e+21`` / ``1.5e-7`` beyond).
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
        return str(value)
    x = float(value)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    text = repr(abs(x))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    # value = 0.<digits> * 10**point
    point = int(exponent or "0") + len(whole)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        body = digits + "0" * (point - k)
    elif 0 < point <= 21:
        body = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        body = "0." + "0" * (-point) + digits
    else:
        head = digits[0] + ("." + digits[1:] if k > 1 else "")
        shift = point - 1
        body = head + "e" + ("+" if shift > 0 else "-") + str(abs(shift))
    return sign + body


def is_hashable(value: object) -> bool:
    """Only non-empty strings and finite non-zero numbers identify a unit."""
    if isinstance(value, str):
        return value != ""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value != 0 and abs(value) < 2**1024
    if isinstance(value, float):
        return value != 0 and math.isfinite(value)
    return False


def hash_string(value: object) -> str:
    """The string a unit id is hashed as ("" when it cannot identify a unit)."""
    if type(value) is str:
        return value
    if not is_hashable(value):
        return ""
    if isinstance(value, str):
        return str(value)
    return js_number_to_string(value)  # type: ignore[arg-type]


def resolve_hash_value(
    attributes: Mapping[str, object], attribute: str | None = None, fallback_attribute: str | None = None
) -> tuple[str, object]:
    """The hash attribute actually used and its raw value ("" when missing).

    An attribute that cannot identify a unit counts as missing; then the
    fallback attribute, if any, is tried the same way.
    """
    name = attribute if attribute is not None else "id"
    value = attributes.get(name)
    if is_hashable(value):
        return name, value
    if fallback_attribute:
        fallback = attributes.get(fallback_attribute)
        if is_hashable(fallback):
            return fallback_attribute, fallback
    return name, ""


def is_included_in_rollout(
    seed: str,
    hash_value: str,
    *,
    bucket_range: BucketRange | None = None,
    coverage: float | None = None,
    hash_version: int = 1,
) -> bool:
    """Whether a unit (by its hash string) is inside a percentage rollout.

    With neither a range nor a coverage everybody is included; a range takes
    precedence over coverage; coverage is half-open like ranges (a coverage of
    k/10000 holds exactly k version-2 buckets).
    """
    if bucket_range is None and coverage is None:
        return True
    if bucket_range is None and coverage == 0:
        return False
    if hash_value == "":
        return False
    n = gb_hash(seed, hash_value, hash_version)
    if n is None:
        return False
    if bucket_range is not None:
        return bucket_range[0] <= n < bucket_range[1]
    return coverage is None or n < coverage


def is_filtered_out(filters: Iterable[Filter], attributes: Mapping[str, object]) -> bool:
    """Whether any range filter excludes the unit (a unit without an id is excluded)."""
    for flt in filters:
        _, raw = resolve_hash_value(attributes, flt.attribute)
        value = hash_string(raw)
        if value == "":
            return True
        n = gb_hash(flt.seed, value, flt.hash_version)
        if n is None:
            return True
        if not any(start <= n < end for start, end in flt.ranges):
            return True
    return False


def holdout_filter(seed: str, share: float, attribute: str = "id") -> Filter | None:
    """The range filter that keeps a holdout's units out of an experiment: units whose
    version-2 hash with the holdout's seed is below ``share`` are held out, the others pass
    (None when nobody is held out)."""
    if share <= 0:
        return None
    return Filter(seed=seed, ranges=((share, 1.0),), attribute=attribute, hash_version=2)


# The two arms a holdout's tracking rule reports: its own units, and everyone else.
HOLDOUT_VARIATIONS = ("held-out", "released")


def holdout_experiment_key(holdout_key: str) -> str:
    """The experiment key a holdout's exposures are reported under ("holdout:<key>"; the colon
    keeps it apart from every experiment key)."""
    return "holdout:" + holdout_key


def holdout_members_filter(seed: str, share: float, attribute: str = "id") -> Filter | None:
    """The complement of `holdout_filter`: only the holdout's own units pass (version-2 hash with
    the holdout's seed below ``share``); None when nobody is held out."""
    if share <= 0:
        return None
    return Filter(seed=seed, ranges=((0.0, share),), attribute=attribute, hash_version=2)


def namespace_filter(namespace: Namespace, attribute: str = "id") -> Filter:
    """A namespace as a range filter. GrowthBook ignores an experiment's namespace once it
    has filters, so an experiment with both carries its namespace as this filter (the same
    version-1 hash of ``"__" + id`` and the same range)."""
    return Filter(
        seed="__" + namespace.id, ranges=((namespace.start, namespace.end),), attribute=attribute, hash_version=1
    )
