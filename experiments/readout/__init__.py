"""The readout contract: what a readout is computed from, what it holds, and its stored document.

Plain Python (and the statistics engine): the Celery job builds a `ReadoutInput` from its SQL
sums, `readout_compute` turns it into a `Readout`, and the job stores `readout_to_json(readout)`.
Every reader (result pages, exports, admin, the results API) goes through `readout_from_json`,
which reads every stored version of the document and any part of one.
"""

from experiments.readout.codec import readout_from_json, readout_to_json
from experiments.readout.compute import readout_compute
from experiments.readout.input import GroupSums, Look, MetricDescription, ReadoutInput, SliceSums, VariationSpec
from experiments.readout.legacy import document_version
from experiments.readout.settings import (
    BAYESIAN_MODES,
    DEFAULT_PRIOR_MEAN,
    DEFAULT_PRIOR_STDDEV,
    DIFFERENCE_TYPES,
    ENGINES,
    MODES,
    AnalysisSettings,
    DifferenceType,
    Engine,
    Mode,
)
from experiments.readout.types import (
    READOUT_FIELDS,
    SCHEMA_VERSION,
    ArmSummary,
    Comparison,
    HeterogeneityTest,
    MetricReadout,
    MetricSums,
    Readout,
    ReadoutSums,
    ReadoutWarning,
    Rollup,
    SliceArm,
    SliceDifference,
    SliceMetric,
    SliceReadout,
    VariationResult,
)

__all__ = [
    "BAYESIAN_MODES",
    "DEFAULT_PRIOR_MEAN",
    "DEFAULT_PRIOR_STDDEV",
    "DIFFERENCE_TYPES",
    "ENGINES",
    "MODES",
    "READOUT_FIELDS",
    "SCHEMA_VERSION",
    "AnalysisSettings",
    "ArmSummary",
    "Comparison",
    "DifferenceType",
    "Engine",
    "GroupSums",
    "HeterogeneityTest",
    "Look",
    "MetricDescription",
    "MetricReadout",
    "MetricSums",
    "Mode",
    "Readout",
    "ReadoutInput",
    "ReadoutSums",
    "ReadoutWarning",
    "Rollup",
    "SliceArm",
    "SliceDifference",
    "SliceMetric",
    "SliceReadout",
    "SliceSums",
    "VariationResult",
    "VariationSpec",
    "document_version",
    "readout_compute",
    "readout_from_json",
    "readout_to_json",
]
