"""Exposures recorded outside the events API: the units the evaluation endpoints placed in an
experiment (buffered by the SDK edge and handed over in batches), and callers that record
assignments themselves. Bulk and idempotent, through the same routing and writes as the
events API (`experiments.ingestion`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from base.models import Environment
from experiments.ingestion import _json_object, _Reject, _route_exposure, _routes, _Rows, _unit, _write

__all__ = ["ExposureInput", "ServedExposure", "exposures_record", "serving_exposures_record"]


@dataclass(frozen=True, slots=True)
class ServedExposure:
    """A unit assigned to a variation of a running experiment, as evaluation saw it."""

    environment: str
    experiment: str
    variation: str
    variation_index: int
    unit_id: str
    hash_attribute: str
    flag: str
    rule_id: str | None
    timestamp: float
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def seen_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, tz=UTC)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServedExposure:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True, slots=True)
class ExposureInput:
    """An exposure seen by the serving layer (or any caller other than the events API).

    `environment` (a key) is only read when `exposures_record` is not given an environment id.
    Without `event_id` the exposure is identified by experiment, phase, unit and variation, so
    recording the same assignment again adds nothing.
    """

    experiment: str
    variation: str
    unit_id: str
    timestamp: datetime
    attributes: Mapping[str, Any] | None = None
    environment: str | None = None
    event_id: str | None = None


def serving_exposures_record(exposures: Sequence[ServedExposure]) -> None:
    """The recorder of the exposures the evaluation endpoints buffer (`EXPOSURE_RECORDER`):
    the same bulk, idempotent path as `exposures_record`, which skips experiments that are not
    running and counts each unit once per experiment and variation."""
    exposures_record(
        exposures=[
            {
                "environment": e.environment,
                "experiment": e.experiment,
                "variation": e.variation,
                "unit_id": e.unit_id,
                "timestamp": e.seen_at,
                "attributes": dict(e.attributes),
            }
            for e in exposures
        ]
    )


def _exposure_id(experiment: str, phase_number: int, unit: str, variation: str) -> str:
    digest = hashlib.sha1(
        f"{experiment}\x1f{phase_number}\x1f{unit}\x1f{variation}".encode(), usedforsecurity=False
    ).hexdigest()
    return f"assign:{digest}"


def _as_input(item: ExposureInput | Mapping[str, Any]) -> ExposureInput:
    if isinstance(item, ExposureInput):
        return item
    return ExposureInput(
        experiment=str(item["experiment"]),
        variation=str(item["variation"]),
        unit_id=str(item["unit_id"]),
        timestamp=item["timestamp"],
        attributes=item.get("attributes"),
        environment=item.get("environment"),
        event_id=item.get("event_id") or item.get("id"),
    )


def exposures_record(
    *, exposures: Sequence[ExposureInput | Mapping[str, Any]], environment_id: int | None = None
) -> int:
    """Record exposures seen outside the events API (the evaluation endpoints, SDK callbacks).

    Bulk and idempotent: an exposure of a unit to the same variation of the same experiment
    phase is stored once, however often it is recorded. Exposures of unknown or not-running
    experiments, unknown variations, or outside every phase are skipped. Items may be
    `ExposureInput` or mappings with the same keys; without `environment_id`, each item names
    its environment by key. Returns how many exposures were new. Database errors propagate.
    """
    by_environment: dict[int, list[ExposureInput]] = {}
    if environment_id is None:
        keys = {i.environment if isinstance(i, ExposureInput) else i.get("environment") for i in exposures}
        ids = dict(Environment.objects.filter(key__in=[k for k in keys if k]).values_list("key", "id"))
    for raw in exposures:
        item = _as_input(raw)
        env_id = environment_id if environment_id is not None else ids.get(item.environment or "")
        if env_id is not None:
            by_environment.setdefault(env_id, []).append(item)
    inserted = 0
    for env_id, items in by_environment.items():
        version = Environment.objects.filter(pk=env_id).values_list("config_version", flat=True).first()
        if version is None:
            continue
        routes = _routes(env_id, version)
        rows = _Rows()
        for item in items:
            ts = item.timestamp if item.timestamp.tzinfo else item.timestamp.replace(tzinfo=UTC)
            try:
                experiment_id, phase_id, number, position = _route_exposure(
                    routes, item.experiment, item.variation, ts
                )
                unit = _unit(item.unit_id)
                attrs = _json_object(dict(item.attributes) if item.attributes else None, "attributes")
            except _Reject:
                continue
            rows.exp_ids.append(item.event_id or _exposure_id(item.experiment, number, unit, item.variation))
            rows.exp_experiments.append(experiment_id)
            rows.exp_phases.append(phase_id)
            rows.exp_units.append(unit)
            rows.exp_variations.append(position)
            rows.exp_ts.append(ts)
            rows.exp_attrs.append(attrs)
        inserted += _write(env_id, rows)
    return inserted
