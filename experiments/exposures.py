"""Exposures recorded outside the events API: the units the evaluation endpoints placed in an
experiment (buffered by the SDK edge and handed over in batches), and callers that record
assignments themselves. Bulk and idempotent, through the same routing and writes as the
events API (`experiments.ingestion`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from base.models import Environment
from experiments.ingestion import _json_object, _Reject, _route_exposure, _routes, _Rows, _unit, _write

__all__ = [
    "ExposureInput",
    "ServedExposure",
    "exposures_record",
    "served_exposures_load",
    "serving_exposures_record",
]


@dataclass(frozen=True, slots=True)
class ServedExposure:
    """A unit assigned to a variation of a running experiment, as evaluation saw it.

    The environment travels as its id, which is what the rows store, and as its key, which
    keeps logs and spool files readable.
    """

    environment_id: int
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
        # Built by hand: dataclasses.asdict deep-copies the attributes of every exposure, which
        # was most of the cost of queueing them on a request.
        return {
            "environment_id": self.environment_id, "environment": self.environment, "experiment": self.experiment,
            "variation": self.variation, "variation_index": self.variation_index, "unit_id": self.unit_id,
            "hash_attribute": self.hash_attribute, "flag": self.flag, "rule_id": self.rule_id,
            "timestamp": self.timestamp, "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, environment_id: int | None = None) -> ServedExposure:
        """The exposure of `as_json`; `environment_id` stands in for a record that lacks one."""
        values = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        if "environment_id" not in values:
            if environment_id is None:
                raise KeyError("environment_id")
            values["environment_id"] = environment_id
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ExposureInput:
    """An exposure seen by any caller other than the events API and the SDK edge.

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

    @property
    def seen_at(self) -> datetime:
        return self.timestamp if self.timestamp.tzinfo else self.timestamp.replace(tzinfo=UTC)


class _Exposure(Protocol):
    """What recording reads of an exposure, whoever saw it."""

    @property
    def experiment(self) -> str: ...

    @property
    def variation(self) -> str: ...

    @property
    def unit_id(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, Any] | None: ...

    @property
    def seen_at(self) -> datetime: ...


def serving_exposures_record(exposures: Sequence[ServedExposure]) -> int:
    """Record the exposures the evaluation endpoints buffered, each in the environment whose id
    it carries: the same bulk, idempotent path as `exposures_record`, which skips experiments
    that are not running and counts each unit once per experiment and variation. Returns how
    many exposures were new; database errors propagate (the SDK edge spools the batch)."""
    by_environment: dict[int, list[ServedExposure]] = {}
    for exposure in exposures:
        by_environment.setdefault(exposure.environment_id, []).append(exposure)
    return _record(by_environment)


def served_exposures_load(records: Iterable[Mapping[str, Any]]) -> list[ServedExposure]:
    """Exposures read back from their JSON form (`ServedExposure.as_json`).

    Records that lack the environment id name only the environment's key: those keys are
    looked up in one query. Records of an environment that no longer exists are left out.
    """
    records = list(records)
    keys = {str(r["environment"]) for r in records if "environment_id" not in r}
    ids: dict[str, int] = {}
    if keys:
        ids = dict(Environment.objects.filter(key__in=keys).values_list("key", "id"))
    out: list[ServedExposure] = []
    for record in records:
        if "environment_id" in record:
            out.append(ServedExposure.from_json(record))
        elif str(record["environment"]) in ids:
            out.append(ServedExposure.from_json(record, environment_id=ids[str(record["environment"])]))
    return out


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
    """Record exposures seen outside the events API (SDK callbacks, server code).

    Bulk and idempotent: an exposure of a unit to the same variation of the same experiment
    phase is stored once, however often it is recorded. Exposures of unknown or not-running
    experiments, unknown variations, or outside every phase are skipped. Items may be
    `ExposureInput` or mappings with the same keys; without `environment_id`, each item names
    its environment by key. Returns how many exposures were new. Database errors propagate.
    """
    items = [_as_input(raw) for raw in exposures]
    by_environment: dict[int, list[ExposureInput]] = {}
    if environment_id is not None:
        if items:
            by_environment[environment_id] = items
    else:
        keys = {item.environment for item in items if item.environment}
        ids = dict(Environment.objects.filter(key__in=keys).values_list("key", "id")) if keys else {}
        for item in items:
            env_id = ids.get(item.environment or "")
            if env_id is not None:
                by_environment.setdefault(env_id, []).append(item)
    return _record(by_environment)


def _record(by_environment: Mapping[int, Sequence[_Exposure]]) -> int:
    """Write each environment's exposures through its experiments as of its current config
    version (the versions of every environment in one query)."""
    if not by_environment:
        return 0
    versions = dict(
        Environment.objects.filter(pk__in=list(by_environment)).values_list("id", "config_version")
    )
    inserted = 0
    for env_id, items in by_environment.items():
        version = versions.get(env_id)
        if version is None:
            continue  # the environment was deleted meanwhile
        routes = _routes(env_id, version)
        rows = _Rows()
        for item in items:
            ts = item.seen_at
            try:
                experiment_id, phase_id, number, position = _route_exposure(
                    routes, item.experiment, item.variation, ts
                )
                unit = _unit(item.unit_id)
                attrs = _json_object(dict(item.attributes) if item.attributes else None, "attributes")
            except _Reject:
                continue
            event_id = item.event_id if isinstance(item, ExposureInput) else None
            rows.exp_ids.append(event_id or _exposure_id(item.experiment, number, unit, item.variation))
            rows.exp_experiments.append(experiment_id)
            rows.exp_phases.append(phase_id)
            rows.exp_units.append(unit)
            rows.exp_variations.append(position)
            rows.exp_ts.append(ts)
            rows.exp_attrs.append(attrs)
        inserted += _write(env_id, rows)
    return inserted
