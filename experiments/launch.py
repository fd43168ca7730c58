"""Launching an experiment from a finished plan, as the guided creation does in one step.

In one transaction: a new on/off flag when the plan asks for one, the draft experiment with
its variations and metrics and, when asked, its start. Each step is the ordinary service,
with its checks and audit entry; a refusal at any step writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from audit.types import Actor
from base.models import Environment
from base.reviews import reviewable
from config.errors import ValidationFailed
from experiments.lifecycle import experiment_create, experiment_start
from experiments.models import Experiment
from experiments.reviews import launched_target, of_launch
from flags import services as flag_services
from flags.models import Flag

__all__ = ["experiment_launch"]


@reviewable("experiment.launch", label="Launch experiment", target=launched_target,
            refs={"flag": "flag", "environment": "environment"}, environments=of_launch)
@transaction.atomic
def experiment_launch(
    *,
    actor: Actor,
    key: str,
    environment: Environment,
    flag: Flag | None = None,
    new_flag_key: str = "",
    variations: Sequence[Mapping[str, Any]],
    metrics: Sequence[Mapping[str, Any]],
    start: bool = False,
    **fields: Any,
) -> Experiment:
    """Create an experiment on `flag`, or on a new boolean flag `new_flag_key` (variants `off`,
    the control, and `on`), and start it when `start` is set.

    `variations`, `metrics` and `fields` are those of `experiment_create`. A new flag is owned
    by the experiment's owner and switched on in `environment`: on, it serves its default
    (`off`) until the experiment's rule splits traffic, so switching it on changes nothing for
    users by itself.
    """
    if (flag is None) == (not new_flag_key):
        raise ValidationFailed("Pick an existing flag or give the key of a new one (not both).",
                               details={"flag": ["Give exactly one of flag and new_flag_key."]})
    if flag is None:
        flag = flag_services.flag_create(actor=actor, key=new_flag_key, owner=str(fields.get("owner") or ""),
                                         description=f"Created for the experiment {key}.")
        flag_services.flag_state_update(actor=actor, flag=flag, environment=environment, enabled=True)
    experiment = experiment_create(actor=actor, key=key, flag=flag, environment=environment, variations=variations,
                                   metrics=metrics, **fields)
    if start:
        experiment = experiment_start(actor=actor, experiment=experiment)
    return experiment
