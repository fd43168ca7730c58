"""The flag engine: a compiled snapshot of an environment's flags in, values out.

Pure (no Django): the serving edge evaluates snapshots that `flags.mappers` compiles from the
database; the GrowthBook SDK payload is a direct serialisation of the same snapshot, so SDKs
evaluating it locally agree with the server. Modules: `types` (the snapshot and evaluation
results), `conditions` (GrowthBook's condition language), `evaluation`, `gbformat` (the SDK
payload both ways), `validation` (checks the services run before a write), `limits` (how
large and deep configuration may be), `describe` (conditions and rules in words, for people)
`advice` (valid configurations that do not do what they seem to: rules that change nothing)
`attributes` (attribute definitions: types, allowed values, the attributes a condition tests),
`privacy` (what client keys may receive: the payload with secure attributes hashed) and
`builder` (the condition builder's rows: conditions to rows and back, operators per type,
warnings).
"""

from flags.engine.advice import MootRule, moot_rules
from flags.engine.conditions import ConditionTooComplex, compile_condition, eval_condition, validate_condition
from flags.engine.describe import describe_condition, describe_prerequisite, describe_rule, describe_value
from flags.engine.evaluation import evaluate, evaluate_all, prerequisites_of, run_experiment
from flags.engine.gbformat import next_schedule_change, snapshot_from_payload, snapshot_to_payload
from flags.engine.types import (
    UNSET,
    Evaluation,
    Experiment,
    ExperimentAssignment,
    Feature,
    ParentCondition,
    Reason,
    Rule,
    Snapshot,
    Source,
    ValueType,
    VariationMeta,
)
from flags.engine.validation import (
    check_condition,
    check_prerequisites,
    check_rule,
    check_segment_ids,
    check_served_variants,
    check_variants,
    find_cycle,
    value_matches_type,
)

__all__ = [
    "UNSET",
    "ConditionTooComplex",
    "Evaluation",
    "Experiment",
    "ExperimentAssignment",
    "Feature",
    "MootRule",
    "ParentCondition",
    "Reason",
    "Rule",
    "Snapshot",
    "Source",
    "ValueType",
    "VariationMeta",
    "check_condition",
    "check_prerequisites",
    "check_rule",
    "check_segment_ids",
    "check_served_variants",
    "check_variants",
    "compile_condition",
    "describe_condition",
    "describe_prerequisite",
    "describe_rule",
    "describe_value",
    "eval_condition",
    "evaluate",
    "evaluate_all",
    "find_cycle",
    "moot_rules",
    "next_schedule_change",
    "prerequisites_of",
    "run_experiment",
    "snapshot_from_payload",
    "snapshot_to_payload",
    "validate_condition",
    "value_matches_type",
]
