"""Every write of the experiments app, in one place for callers.

The work lives in sub-domain modules: `catalog` (metrics), `lifecycle` (experiments),
`ingestion` (exposures and metric events) and `readouts` (queueing and
computing result snapshots).
"""

from experiments.catalog import metric_archive, metric_create, metric_update
from experiments.ingestion import (
    ExposureInput,
    IngestResult,
    Rejection,
    events_ingest,
    exposures_record,
    serving_exposures_record,
)
from experiments.lifecycle import (
    experiment_archive,
    experiment_create,
    experiment_start,
    experiment_start_problems,
    experiment_stop,
    experiment_update,
)
from experiments.readouts import experiment_refresh, experiments_refresh_running, readout_run

__all__ = [
    "ExposureInput",
    "IngestResult",
    "Rejection",
    "events_ingest",
    "experiment_archive",
    "experiment_create",
    "experiment_refresh",
    "experiment_start",
    "experiment_start_problems",
    "experiment_stop",
    "experiment_update",
    "experiments_refresh_running",
    "exposures_record",
    "metric_archive",
    "metric_create",
    "metric_update",
    "readout_run",
    "serving_exposures_record",
]
