"""Assignment: how a unit id becomes a bucket, a variation, a rollout share or a namespace range.

Pure (no Django) and bit-for-bit GrowthBook's: FNV-1a hashing (v1 and v2), bucket ranges from
weights and coverage, namespaces and filters (`hashing`, `bucketing`), and the allocation of
disjoint layer ranges between experiments (`allocation`).
"""

from traffic.assignment.allocation import Overlap, find_overlaps, first_free_range, free_ranges, range_errors
from traffic.assignment.bucketing import (
    HOLDOUT_VARIATIONS,
    choose_variation,
    get_bucket_ranges,
    get_equal_weights,
    hash_string,
    holdout_experiment_key,
    holdout_filter,
    holdout_members_filter,
    in_namespace,
    in_range,
    is_filtered_out,
    is_included_in_rollout,
    namespace_filter,
    resolve_hash_value,
)
from traffic.assignment.hashing import fnv1a32, gb_hash, hash_v1, hash_v2
from traffic.assignment.types import BucketRange, Filter, Namespace

__all__ = [
    "HOLDOUT_VARIATIONS",
    "BucketRange",
    "Filter",
    "Namespace",
    "Overlap",
    "choose_variation",
    "find_overlaps",
    "first_free_range",
    "fnv1a32",
    "free_ranges",
    "gb_hash",
    "get_bucket_ranges",
    "get_equal_weights",
    "hash_string",
    "hash_v1",
    "hash_v2",
    "holdout_experiment_key",
    "holdout_filter",
    "holdout_members_filter",
    "in_namespace",
    "in_range",
    "is_filtered_out",
    "is_included_in_rollout",
    "namespace_filter",
    "range_errors",
    "resolve_hash_value",
]
