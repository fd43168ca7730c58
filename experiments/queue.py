"""Sending readouts to the Celery workers, by task name.

The readout services queue work without importing the task module, which imports them: the
task is named, and the broker carries the name to a worker.
"""

from __future__ import annotations

from celery import current_app

READOUT_TASK = "experiments.tasks.experiment_readout_task"


def readout_send(experiment_id: int, snapshot_id: int) -> None:
    """Queue one readout now (call it from `transaction.on_commit`)."""
    current_app.send_task(READOUT_TASK, args=(experiment_id, snapshot_id))


HOLDOUT_READOUT_TASK = "experiments.tasks.holdout_readout_task"


def holdout_readout_send(snapshot_id: int) -> None:
    """Queue one holdout readout now (call it from `transaction.on_commit`)."""
    current_app.send_task(HOLDOUT_READOUT_TASK, args=(snapshot_id,))
