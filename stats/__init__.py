"""Statistics engine for experiment readouts.

A plain package (numpy and scipy only): per-variation sufficient statistics in, lifts,
intervals, p-values, chance to win, CUPED variance reduction and sample-ratio checks out;
with the Bayesian engine (stats.bayesian) posterior means, credible intervals, chance to win
and risk; per slice attribute a test of whether the effect differs across its values
(stats.heterogeneity); the winner's-curse correction of many experiments' effects
(stats.shrinkage, empirical-Bayes shrinkage toward zero).
See docs/statistics.md for every method in plain words with its formula and sources.
"""

from stats.analysis import analyze, analyze_many, analyze_records, validate
from stats.corrections import adjust_p_values
from stats.engine import ArmArrays, ComparisonArrays, compare_arrays
from stats.heterogeneity import (
    AttributeEstimates,
    AttributeHeterogeneity,
    CochranQ,
    ValueDifference,
    cochran_q,
    heterogeneity_family,
    leave_one_out,
)
from stats.parse import parse_analysis, parse_request, result_to_dict
from stats.power import (
    baseline_moments,
    detection_power,
    minimum_detectable_effect,
    sequential_users_needed,
    users_needed,
)
from stats.shrinkage import Shrinkage, ShrunkEffect, shrink_effects
from stats.srm import srm_test
from stats.types import (
    ERROR_CODES,
    AnalysisInput,
    AnalysisResult,
    Comparison,
    CorrectionMethod,
    DifferenceType,
    Engine,
    ErrorCode,
    InputError,
    MetricType,
    SrmResult,
    StatsError,
    VariationData,
    VariationSummary,
)

__all__ = [
    "ERROR_CODES",
    "AnalysisInput",
    "AnalysisResult",
    "ArmArrays",
    "AttributeEstimates",
    "AttributeHeterogeneity",
    "CochranQ",
    "Comparison",
    "ComparisonArrays",
    "CorrectionMethod",
    "DifferenceType",
    "Engine",
    "ErrorCode",
    "InputError",
    "MetricType",
    "Shrinkage",
    "ShrunkEffect",
    "SrmResult",
    "StatsError",
    "ValueDifference",
    "VariationData",
    "VariationSummary",
    "adjust_p_values",
    "analyze",
    "analyze_many",
    "analyze_records",
    "baseline_moments",
    "cochran_q",
    "compare_arrays",
    "detection_power",
    "heterogeneity_family",
    "leave_one_out",
    "minimum_detectable_effect",
    "parse_analysis",
    "parse_request",
    "result_to_dict",
    "sequential_users_needed",
    "shrink_effects",
    "srm_test",
    "users_needed",
    "validate",
]
