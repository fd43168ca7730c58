"""Exposure and metric-event ingestion: validate every item, write the good ones in bulk.

A batch is validated item by item in Python (a bad item is rejected with its index, a code
and a message; the others are kept), then written in one transaction of a few statements
whatever its size: the unit ids are looked up in `experiments_unit`, and events
and exposures are inserted from arrays bound as parameters (`unnest`), with
`ON CONFLICT DO NOTHING` on the client's id, which makes a re-sent batch add nothing. New
exposures update the per-unit `experiments_assignment` rows in the same statement. Unit keys
become integer ids with one lookup per batch (new keys are added first). Measured
alternatives are in docs/benchmarks.md (Ingestion).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from django.db import connection, transaction

from base.models import Environment
from config.json_values import holds_nul
from config.metrics import EVENTS
from experiments.holdout_models import HOLDOUT_PHASE_BASE
from experiments.models import MAX_METRIC_DAYS, Experiment, HoldoutAnalysis, Phase, Variation
from traffic.assignment.bucketing import HOLDOUT_VARIATIONS, holdout_experiment_key

__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_FUTURE",
    "MAX_HISTORY",
    "MAX_PAST",
    "REJECTION_CODES",
    "IngestResult",
    "Rejection",
    "events_ingest",
]

MAX_BATCH_ITEMS = 1000
# Clocks drift: a timestamp up to this far ahead of the server's clock is taken as sent.
MAX_FUTURE = timedelta(minutes=10)
# Older items are refused (epoch seconds sent as milliseconds land in 1970, for example).
MAX_PAST = timedelta(days=90)
# Events loaded as history (`manage.py import_events`) may be this old: the longest metric window
# (365 days after an exposure) plus the longest CUPED lookback (90 days before it).
MAX_HISTORY = timedelta(days=MAX_METRIC_DAYS + 90)
MAX_ID_LENGTH = 128
MAX_UNIT_LENGTH = 256
MAX_NAME_LENGTH = 100
MAX_KEY_LENGTH = 100
# The largest event value taken, in magnitude: far above any amount in minor units, and small
# enough that the readout's sums of squares and products cannot overflow a float.
MAX_EVENT_VALUE = 1e15

REJECTION_CODES: dict[str, str] = {
    "invalid_item": "The item is not a JSON object.",
    "missing_field": "A required field is missing.",
    "invalid_type": "`type` is neither 'exposure' nor 'event'.",
    "invalid_id": f"`id` is not a string of 1 to {MAX_ID_LENGTH} characters.",
    "invalid_unit_id": f"`unit_id` is not a string (or integer) of 1 to {MAX_UNIT_LENGTH} characters.",
    "invalid_timestamp": "`timestamp` is neither an ISO 8601 date-time nor epoch milliseconds.",
    "timestamp_in_future": "`timestamp` is more than 10 minutes ahead of the server clock.",
    "timestamp_too_old": "`timestamp` is more than 90 days in the past.",
    "invalid_name": f"`name` is not a string of 1 to {MAX_NAME_LENGTH} characters.",
    "invalid_value": f"`value` is not a number between -{MAX_EVENT_VALUE:g} and {MAX_EVENT_VALUE:g}.",
    "invalid_properties": "`properties` or `attributes` is not a JSON object.",
    "invalid_characters": "A string of the item contains the NUL character (U+0000), which cannot be stored.",
    "unknown_experiment": "No experiment with this key in the environment.",
    "unknown_variation": "The experiment has no variation with this key.",
    "experiment_not_running": "The experiment is a draft or archived.",
    "outside_experiment_period": "The timestamp falls outside every phase of the experiment.",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[Rejection] = field(default_factory=list)
    # Experiments that accepted exposures, with the latest exposure time of each.
    exposed: dict[int, datetime] = field(default_factory=dict)


# Experiments of an environment, as ingestion needs them -----------------------------------


@dataclass(frozen=True, slots=True)
class _Route:
    id: int
    status: str
    variations: dict[str, int]
    # (phase id, phase number, start, end or None), in time order.
    phases: tuple[tuple[int, int, datetime, datetime | None], ...]

    def phase_at(self, ts: datetime) -> tuple[int, int] | None:
        for phase_id, number, start, end in reversed(self.phases):
            if ts >= start and (end is None or ts < end):
                return phase_id, number
        return None


_routes_lock = threading.Lock()
# environment id -> (config version, routes by experiment key). Every experiment write bumps
# the environment's config version, so a cached entry is exact until the version changes.
_routes_cache: dict[int, tuple[int, dict[str, _Route]]] = {}


def _routes(environment_id: int, config_version: int | None) -> dict[str, _Route]:
    if config_version is not None:
        cached = _routes_cache.get(environment_id)
        if cached is not None and cached[0] == config_version:
            return cached[1]
    experiments = list(
        Experiment.objects.filter(environment_id=environment_id).values_list("id", "key", "status")
    )
    ids = [e[0] for e in experiments]
    variations: dict[int, dict[str, int]] = {i: {} for i in ids}
    for experiment_id, key, position in Variation.objects.filter(experiment_id__in=ids).values_list(
        "experiment_id", "key", "position"
    ):
        variations[experiment_id][key] = position
    phases: dict[int, list[tuple[int, int, datetime, datetime | None]]] = {i: [] for i in ids}
    for phase_id, experiment_id, number, start, end in Phase.objects.filter(experiment_id__in=ids).values_list(
        "id", "experiment_id", "number", "started_at", "ended_at"
    ).order_by("experiment_id", "number"):
        phases[experiment_id].append((phase_id, number, start, end))
    routes = {
        key: _Route(id=i, status=status, variations=variations[i], phases=tuple(phases[i]))
        for i, key, status in experiments
    }
    routes.update(_holdout_routes(environment_id))
    if config_version is not None:
        with _routes_lock:
            _routes_cache[environment_id] = (config_version, routes)
    return routes


def _holdout_routes(environment_id: int) -> dict[str, _Route]:
    """Exposures reported by holdouts' tracking rules ("holdout:<key>", arms held-out and
    released) go to the holdout's analysis in this environment, as one phase from the
    analysis's start to the holdout's end, under the analysis's own phase id."""
    rows = HoldoutAnalysis.objects.filter(environment_id=environment_id).values_list(
        "pk", "holdout__key", "started_at", "holdout__ended_at")
    variations = {key: i for i, key in enumerate(HOLDOUT_VARIATIONS)}
    return {
        holdout_experiment_key(key): _Route(
            id=HOLDOUT_PHASE_BASE + pk, status=Experiment.Status.RUNNING, variations=variations,
            phases=((HOLDOUT_PHASE_BASE + pk, 1, started, ended),))
        for pk, key, started, ended in rows
    }


# Validation --------------------------------------------------------------------------------


class _Reject(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _timestamp(raw: Any, earliest: datetime, latest: datetime) -> datetime:
    kind = type(raw)
    if kind is int or kind is float:
        if not math.isfinite(raw):
            raise _Reject("invalid_timestamp", "`timestamp` must be a finite number of epoch milliseconds.")
        try:
            ts = _EPOCH + timedelta(milliseconds=raw)
        except OverflowError as exc:
            raise _Reject("invalid_timestamp", "`timestamp` is out of range.") from exc
    elif kind is str:
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise _Reject(
                "invalid_timestamp", "`timestamp` must be an ISO 8601 date-time or epoch milliseconds."
            ) from exc
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
    else:
        raise _Reject("invalid_timestamp", "`timestamp` must be an ISO 8601 string or epoch milliseconds.")
    if ts > latest:
        raise _Reject("timestamp_in_future", "`timestamp` is more than 10 minutes ahead of the server clock.")
    if ts < earliest:
        raise _Reject("timestamp_too_old", f"`timestamp` is more than {(latest - MAX_FUTURE - earliest).days} days "
                                           "in the past.")
    return ts


def _unit(raw: Any) -> str:
    kind = type(raw)
    if kind is int:
        raw = str(raw)
    elif kind is not str:
        raise _Reject("invalid_unit_id", "`unit_id` must be a string.")
    if not 0 < len(raw) <= MAX_UNIT_LENGTH:
        raise _Reject("invalid_unit_id", f"`unit_id` must have 1 to {MAX_UNIT_LENGTH} characters.")
    return str(raw)


def _json_object(raw: Any, name: str) -> str | None:
    if raw is None:
        return None
    if type(raw) is not dict:
        raise _Reject("invalid_properties", f"`{name}` must be a JSON object.")
    if not raw:
        return None
    return orjson.dumps(raw).decode()


@dataclass(slots=True)
class _Rows:
    """Column lists of the rows to write, bound as arrays."""

    event_ids: list[str] = field(default_factory=list)
    event_units: list[str] = field(default_factory=list)
    event_names: list[str] = field(default_factory=list)
    event_values: list[float] = field(default_factory=list)
    event_ts: list[datetime] = field(default_factory=list)
    event_props: list[str | None] = field(default_factory=list)
    exp_ids: list[str] = field(default_factory=list)
    exp_experiments: list[int] = field(default_factory=list)
    exp_phases: list[int] = field(default_factory=list)
    exp_units: list[str] = field(default_factory=list)
    exp_variations: list[int] = field(default_factory=list)
    exp_ts: list[datetime] = field(default_factory=list)
    exp_attrs: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_ids) + len(self.exp_ids)


def _route_exposure(
    routes: Mapping[str, _Route], experiment: Any, variation: Any, ts: datetime
) -> tuple[int, int, int, int]:
    """(experiment id, phase id, phase number, variation position) or a rejection."""
    if type(experiment) is not str:
        raise _Reject("unknown_experiment", "`experiment` must be an experiment key.")
    route = routes.get(experiment)
    if route is None:
        raise _Reject("unknown_experiment", f"No experiment '{experiment[:MAX_KEY_LENGTH]}' in this environment.")
    if route.status in (Experiment.Status.DRAFT, Experiment.Status.ARCHIVED):
        raise _Reject("experiment_not_running", f"Experiment '{experiment}' is {route.status}.")
    position = route.variations.get(variation) if type(variation) is str else None
    if position is None:
        raise _Reject("unknown_variation", f"Experiment '{experiment}' has no variation '{str(variation)[:100]}'.")
    phase = route.phase_at(ts)
    if phase is None:
        raise _Reject("outside_experiment_period", f"The timestamp is outside every phase of '{experiment}'.")
    return route.id, phase[0], phase[1], position


def _missing(item: dict[str, Any], names: tuple[str, ...]) -> _Reject:
    name = next(n for n in names if item.get(n) is None)
    return _Reject("missing_field", f"`{name}` is required.")


COMMON = ("type", "id", "unit_id", "timestamp")


def _validate(
    items: Sequence[Any], routes: Mapping[str, _Route], now: datetime, max_past: timedelta = MAX_PAST
) -> tuple[_Rows, list[Rejection], int]:
    """Check every item; collect the good ones as columns. The loop is the hot path of
    ingestion (a few microseconds per item), hence the local names."""
    rows = _Rows()
    rejected: list[Rejection] = []
    seen_events: set[str] = set()
    seen_exposures: set[str] = set()
    repeated = 0
    earliest, latest = now - max_past, now + MAX_FUTURE
    ev_ids, ev_units, ev_names = rows.event_ids.append, rows.event_units.append, rows.event_names.append
    ev_values, ev_ts, ev_props = rows.event_values.append, rows.event_ts.append, rows.event_props.append
    for index, item in enumerate(items):
        try:
            if type(item) is not dict:
                raise _Reject("invalid_item", "Each item must be a JSON object.")
            get = item.get
            kind, client_id, unit, raw_ts = get("type"), get("id"), get("unit_id"), get("timestamp")
            if kind is None or client_id is None or unit is None or raw_ts is None:
                raise _missing(item, COMMON)
            if type(client_id) is not str or not 0 < len(client_id) <= MAX_ID_LENGTH:
                raise _Reject("invalid_id", f"`id` must be a string of 1 to {MAX_ID_LENGTH} characters.")
            if type(unit) is not str or not 0 < len(unit) <= MAX_UNIT_LENGTH:
                unit = _unit(unit)
            ts = _timestamp(raw_ts, earliest, latest)
            if kind == "event":
                name = get("name")
                if name is None:
                    raise _missing(item, ("name",))
                if type(name) is not str or not 0 < len(name) <= MAX_NAME_LENGTH:
                    raise _Reject("invalid_name", f"`name` must be a string of 1 to {MAX_NAME_LENGTH} characters.")
                value = get("value")
                if value is None:
                    value = 1.0
                elif (type(value) is not float and type(value) is not int) or not -MAX_EVENT_VALUE <= value <= \
                        MAX_EVENT_VALUE:
                    # NaN fails the comparison too; an integer of any size compares exactly.
                    raise _Reject("invalid_value",
                                  f"`value` must be a number between -{MAX_EVENT_VALUE:g} and {MAX_EVENT_VALUE:g}.")
                props = get("properties")
                if props is not None:
                    props = _json_object(props, "properties")
                if client_id in seen_events:
                    repeated += 1
                    continue
                seen_events.add(client_id)
                ev_ids(client_id)
                ev_units(unit)
                ev_names(name)
                ev_values(float(value))
                ev_ts(ts)
                ev_props(props)
            elif kind == "exposure":
                experiment, variation = get("experiment"), get("variation")
                if experiment is None or variation is None:
                    raise _missing(item, ("experiment", "variation"))
                experiment_id, phase_id, _, position = _route_exposure(routes, experiment, variation, ts)
                attrs = _json_object(get("attributes"), "attributes")
                if client_id in seen_exposures:
                    repeated += 1
                    continue
                seen_exposures.add(client_id)
                rows.exp_ids.append(client_id)
                rows.exp_experiments.append(experiment_id)
                rows.exp_phases.append(phase_id)
                rows.exp_units.append(unit)
                rows.exp_variations.append(position)
                rows.exp_ts.append(ts)
                rows.exp_attrs.append(attrs)
            else:
                raise _Reject("invalid_type", "`type` must be 'exposure' or 'event'.")
        except _Reject as reject:
            rejected.append(Rejection(index, reject.code, reject.message))
    return rows, rejected, repeated


# Writing -----------------------------------------------------------------------------------

_UNITS_FIND_SQL = """
SELECT key, id FROM experiments_unit WHERE environment_id = %(env)b AND key = ANY(%(units)b::text[])
"""

_UNITS_ADD_SQL = """
INSERT INTO experiments_unit (environment_id, key)
SELECT %(env)b, k FROM unnest(%(units)b::text[]) AS k ORDER BY k
ON CONFLICT (environment_id, key) DO NOTHING
"""

_EVENTS_SQL = """
INSERT INTO experiments_event (environment_id, client_id, unit_id, name, value, ts, received_at, properties)
SELECT %(env)b, s.cid, s.unit_id, s.name, s.value, s.ts, now(), s.props::jsonb
FROM unnest(%(ids)b::text[], %(units)b::bigint[], %(names)b::text[], %(values)b::float8[],
            %(ts)b::timestamptz[], %(props)b::text[]) AS s(cid, unit_id, name, value, ts, props)
ON CONFLICT DO NOTHING
"""

_EXPOSURES_SQL = """
WITH ins AS (
    INSERT INTO experiments_exposure
        (environment_id, client_id, experiment_id, phase_id, unit_id, variation, ts, received_at, attributes)
    SELECT %(env)b, s.cid, s.experiment_id, s.phase_id, s.unit_id, s.variation, s.ts, now(), s.attrs::jsonb
    FROM unnest(%(ids)b::text[], %(experiments)b::bigint[], %(phases)b::bigint[], %(units)b::bigint[],
                %(variations)b::int2[], %(ts)b::timestamptz[], %(attrs)b::text[])
         AS s(cid, experiment_id, phase_id, unit_id, variation, ts, attrs)
    ON CONFLICT DO NOTHING
    RETURNING experiment_id, phase_id, unit_id, variation, ts, attributes
), firsts AS (
    SELECT DISTINCT ON (phase_id, unit_id)
           phase_id, unit_id, experiment_id, variation, ts, attributes,
           min(variation) OVER w <> max(variation) OVER w AS multiple
    FROM ins
    WINDOW w AS (PARTITION BY phase_id, unit_id)
    ORDER BY phase_id, unit_id, ts, variation
), up AS (
    INSERT INTO experiments_assignment AS a
        (phase_id, unit_id, experiment_id, variation, first_seen, attributes, multiple, updated_at)
    SELECT phase_id, unit_id, experiment_id, variation, ts, attributes, multiple, now() FROM firsts
    ON CONFLICT (phase_id, unit_id) DO UPDATE SET
        multiple = a.multiple OR EXCLUDED.multiple OR a.variation <> EXCLUDED.variation,
        first_seen = least(a.first_seen, EXCLUDED.first_seen),
        variation = CASE WHEN EXCLUDED.first_seen < a.first_seen THEN EXCLUDED.variation ELSE a.variation END,
        attributes = CASE WHEN EXCLUDED.first_seen < a.first_seen THEN EXCLUDED.attributes ELSE a.attributes END,
        updated_at = now()
    WHERE EXCLUDED.first_seen < a.first_seen OR a.variation <> EXCLUDED.variation
       OR (EXCLUDED.multiple AND NOT a.multiple)
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM up)
"""


def _raw_cursor() -> psycopg.Cursor[Any]:
    """A server-side-binding cursor on Django's connection.

    The statements use `%(name)b` placeholders: parameters travel in binary, which for
    1,000-element arrays is several times cheaper to prepare than the text format.
    """
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    return psycopg.Cursor(raw)


def _in_order(keys: list[str], *columns: list[Any]) -> list[list[Any]]:
    """The columns reordered by key: every transaction then takes row locks in the same order."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [[column[i] for i in order] for column in (keys, *columns)]


def _unit_ids(cur: psycopg.Cursor[Any], environment_id: int, keys: set[str]) -> dict[str, int]:
    """Integer ids of the unit keys, adding the keys seen for the first time.

    Most units of a batch are known already: one lookup finds them, and only the new ones are
    inserted (in sorted order, so that concurrent batches bringing the same new units wait
    for each other instead of deadlocking). A key another batch added meanwhile is found by
    the second lookup.
    """
    params = {"env": environment_id, "units": list(keys)}
    found: dict[str, int] = dict(cur.execute(_UNITS_FIND_SQL, params).fetchall())
    if len(found) < len(keys):
        missing = sorted(keys.difference(found))
        cur.execute(_UNITS_ADD_SQL, {"env": environment_id, "units": missing})
        found.update(cur.execute(_UNITS_FIND_SQL, {"env": environment_id, "units": missing}).fetchall())
    return found


def _write(environment_id: int, rows: _Rows) -> int:
    """Insert the rows in one transaction; returns how many were new (the rest were stored before).

    New units, events and exposures are written in sorted order (units, then events, then
    exposures), so concurrent batches that share new units or ids wait for each other at
    worst, and never deadlock.
    """
    if not len(rows):
        return 0
    inserted = 0
    with transaction.atomic(), _raw_cursor() as cur:
        unit_ids = _unit_ids(cur, environment_id, set(rows.event_units) | set(rows.exp_units))
        if rows.event_ids:
            ids, keys, names, values, ts, props = _in_order(
                rows.event_ids, rows.event_units, rows.event_names, rows.event_values, rows.event_ts,
                rows.event_props,
            )
            units_ = [unit_ids[k] for k in keys]
            cur.execute(
                _EVENTS_SQL,
                {"env": environment_id, "ids": ids, "units": units_, "names": names, "values": values, "ts": ts,
                 "props": props},
                binary=True,
            )
            inserted += max(cur.rowcount, 0)
        if rows.exp_ids:
            ids, experiments, phases, keys, variations, ts, attrs = _in_order(
                rows.exp_ids, rows.exp_experiments, rows.exp_phases, rows.exp_units, rows.exp_variations,
                rows.exp_ts, rows.exp_attrs,
            )
            units_ = [unit_ids[k] for k in keys]
            cur.execute(
                _EXPOSURES_SQL,
                {"env": environment_id, "ids": ids, "experiments": experiments, "phases": phases, "units": units_,
                 "variations": variations, "ts": ts, "attrs": attrs},
                binary=True,
            )
            result = cur.fetchone()
            assert result is not None
            inserted += int(result[0])
    return inserted


def _with_nul(items: Sequence[Any]) -> set[int]:
    """Indexes of the items holding a NUL character anywhere (PostgreSQL text and JSON refuse it).

    One encoding of the whole batch (a fraction of a millisecond) rules it out in the usual case.
    """
    try:
        if b"\\u0000" not in orjson.dumps(items):
            return set()
    except TypeError:
        return set()  # not JSON data: the validation rejects the items themselves
    return {i for i, item in enumerate(items) if holds_nul(item)}


def events_ingest(
    *,
    environment: Environment | int,
    items: Sequence[Any],
    config_version: int | None = None,
    now: datetime | None = None,
    max_past: timedelta = MAX_PAST,
) -> IngestResult:
    """Validate and store a batch of exposures and metric events (the `POST /api/v1/events` body).

    `environment` is the row or its id; with an id, `config_version` (the SDK edge knows it from
    its snapshot) lets the environment's experiments come from the cache instead of a query.
    Good items are written even when others are rejected. An item whose id was stored before
    (or appears twice in the batch) counts as a duplicate and changes nothing. `max_past` is
    how old a timestamp may be: `MAX_PAST` for the API, at most `MAX_HISTORY` for history.
    """
    if not timedelta(0) < max_past <= MAX_HISTORY:
        raise ValueError(f"max_past must be above 0 and at most {MAX_HISTORY.days} days.")
    now = now or datetime.now(tz=UTC)
    if isinstance(environment, Environment):
        environment_id, config_version = environment.pk, environment.config_version
    else:
        environment_id = environment
    routes = _routes(environment_id, config_version)
    unstorable = _with_nul(items)
    if unstorable:
        # Rare: leave those items out here, and report them in their place in the batch.
        kept = [i for i in range(len(items)) if i not in unstorable]
        rows, rejected, repeated = _validate([items[i] for i in kept], routes, now, max_past)
        rejected = sorted(
            [Rejection(index=kept[r.index], code=r.code, message=r.message) for r in rejected]
            + [Rejection(index=i, code="invalid_characters", message=REJECTION_CODES["invalid_characters"])
               for i in unstorable],
            key=lambda r: r.index,
        )
    else:
        rows, rejected, repeated = _validate(items, routes, now, max_past)
    inserted = _write(environment_id, rows)
    exposed: dict[int, datetime] = {}
    for experiment_id, ts in zip(rows.exp_experiments, rows.exp_ts, strict=True):
        if experiment_id not in exposed or ts > exposed[experiment_id]:
            exposed[experiment_id] = ts
    result = IngestResult(accepted=inserted, duplicates=len(rows) - inserted + repeated, rejected=rejected,
                          exposed=exposed)
    _count(result)
    return result


def _count(result: IngestResult) -> None:
    if result.accepted:
        EVENTS.labels("accepted", "").inc(result.accepted)
    if result.duplicates:
        EVENTS.labels("duplicate", "").inc(result.duplicates)
    for code, count in Counter(r.code for r in result.rejected).items():
        EVENTS.labels("rejected", code).inc(count)


