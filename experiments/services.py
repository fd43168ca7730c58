"""Every write of the experiments app, in one place for callers.

The work lives in sub-domain modules: `catalog` (metrics), `data_sources` (warehouses),
`lifecycle` (experiments),
`launch` (an experiment created, on a new flag if asked, and started in one step), `ramp`
(coverage raised now or on a schedule, the split changed),
`ingestion` (the events API's exposures and metric events), `exposures` (exposures seen
by the SDK edge) and `readout_jobs` (queueing and computing result snapshots).
"""

from experiments.catalog import metric_archive, metric_create, metric_update
from experiments.data_sources import data_source_create, data_source_delete, data_source_test, data_source_update
from experiments.exposures import ExposureInput, ServedExposure, exposures_record, serving_exposures_record
from experiments.ingestion import IngestResult, Rejection, events_ingest
from experiments.launch import experiment_launch
from experiments.lifecycle import (
    experiment_archive,
    experiment_create,
    experiment_readout_request,
    experiment_start,
    experiment_start_problems,
    experiment_stop,
    experiment_update,
)
from experiments.ramp import (
    experiment_ramp,
    experiment_ramp_cancel,
    experiment_ramp_schedule,
    ramp_preview,
    ramp_schedule_check,
    ramp_steps_apply_due,
)
from experiments.readout_jobs import experiment_refresh, experiments_refresh_running, readout_run

__all__ = [
    "ExposureInput",
    "IngestResult",
    "Rejection",
    "ServedExposure",
    "data_source_create",
    "data_source_delete",
    "data_source_test",
    "data_source_update",
    "events_ingest",
    "experiment_archive",
    "experiment_create",
    "experiment_launch",
    "experiment_ramp",
    "experiment_ramp_cancel",
    "experiment_ramp_schedule",
    "experiment_readout_request",
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
    "ramp_preview",
    "ramp_schedule_check",
    "ramp_steps_apply_due",
    "readout_run",
    "serving_exposures_record",
]
