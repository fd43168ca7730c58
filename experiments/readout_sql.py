"""The readout's SQL: per-unit rollups and per-variation sufficient statistics.

This is the only module that knows how metrics become SQL, so that another engine can take
the heavy aggregation later. It runs in two steps, both inside PostgreSQL; no event row ever
reaches Python:

1. **Rollup.** `experiments_unitrollup` holds, per unit of the phase (single-variation units
   only), every metric's per-unit value over the unit's window after its first exposure, the
   pre-exposure covariate for CUPED and the ratio denominators, uncapped. A readout recomputes
   only the units with new exposures or events since the previous readout (a unit's row is
   always recomputed from all of its events, so the update is exact whatever order events
   arrive in); a change of metric definitions rebuilds the whole phase.
2. **Aggregate.** Capping is applied (absolute caps, or percentiles of the non-zero per-unit
   values computed now) and the rollup is summed per variation and combination of slice
   values: n, Σy, Σy², Σx, Σx², Σxy, Σd, Σd², Σyd and the ratio-CUPED cross products. The
   caller adds up combinations into per-variation totals and per-slice totals.

Per-unit definitions (W is the unit's window [first exposure, first exposure + window hours),
P the lookback [first exposure - lookback, first exposure)):

- conversion: 1 if the event fired in W, else 0; covariate: the same over P.
- mean: Σ event values in W (revenue, GMV); covariate: Σ values over P.
- count: number of events in W; covariate: the number over P.
- ratio: numerator Σ values in W and denominator Σ values in W; covariates over P.
- retention day N: 1 if the event fired in [first exposure + N days, + N+1 days); only units
  whose day N has ended by the analysis end count; covariate: fired over P.
- funnel: 1 if the steps were reached in order within W (step k at or after the time step
  k-1 was first reached); covariate: the last step fired over P.
- ltv day N: Σ event values in [first exposure, + N days) (the window is N days, whatever
  `window_hours` says); only units exposed at least N days before the analysis end count (their
  percentile cap is computed over those units too); covariate: Σ values over P.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from experiments.readout_spec import (
    BINARY_KINDS,
    CAPPABLE_KINDS,
    COLUMNS,
    KINDS,
    AggregateRow,
    MetricSpec,
    ReadoutSpec,
    metric_columns,
)

__all__ = [
    "AggregateRow",
    "MetricSpec",
    "ReadoutSpec",
    "RollupResult",
    "Slot",
    "aggregate",
    "layout",
    "metric_columns",
    "multiple_exposures",
    "percentile_caps",
    "rollup_drop",
    "rollup_query",
    "rollup_rebuild",
    "rollup_refresh",
    "rollup_table",
    "rollup_units_record",
    "slice_keys_query",
]

# Rows received this long before the previous readout began are looked at again: an ingest
# transaction that began before it but committed after it is caught by the next readout.
WATERMARK_OVERLAP = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a metric's per-unit values live: a part and the columns of y, x, d and dx."""

    part: int
    y: int
    x: int | None
    d: int | None
    dx: int | None


@dataclass(frozen=True, slots=True)
class RollupResult:
    mode: str  # "full", "incremental"
    units_recomputed: int
    units: int


def layout(spec: ReadoutSpec) -> tuple[Slot, ...]:
    """Pack the metrics into the value columns, part after part."""
    slots: list[Slot] = []
    part, used = 0, 0
    cov = spec.lookback_hours > 0
    for m in spec.metrics:
        ratio = m.kind == "ratio"
        need = 1 + int(cov) + (1 + int(cov) if ratio else 0)
        if used + need > COLUMNS:
            part, used = part + 1, 0
        cols = iter(range(used, used + need))
        y = next(cols)
        x = next(cols) if cov else None
        d = next(cols) if ratio else None
        dx = next(cols) if ratio and cov else None
        slots.append(Slot(part, y, x, d, dx))
        used += need
    return tuple(slots)


def rollup_table(phase_id: int) -> sql.Identifier:
    """The phase's partition of experiments_unitrollup."""
    return sql.Identifier(f"experiments_unitrollup_p{int(phase_id)}")


def _lit(value: Any) -> sql.Composable:
    return sql.Literal(value)


def _col(index: int) -> sql.Composable:
    return sql.Identifier(f"v{index}")


def _after(hours: float) -> sql.Composable:
    # Hours, not days: timestamptz + '<n> hours' is plain arithmetic, without time-zone rules.
    if hours == 0:
        return sql.SQL("a.first_seen")
    return sql.SQL("a.first_seen + interval {}").format(_lit(f"{hours:g} hours"))


def _is(name: str) -> sql.Composable:
    return sql.SQL("e.name = {}").format(_lit(name))


def _window(m: MetricSpec) -> sql.Composable:
    if m.window_hours is None:
        return sql.SQL("e.ts >= a.first_seen")
    return sql.SQL("e.ts >= a.first_seen AND e.ts < {}").format(_after(m.window_hours))


PRE = sql.SQL("e.ts < a.first_seen")


def _filtered(aggregate: str, *conditions: sql.Composable) -> sql.Composable:
    return sql.SQL(aggregate + " FILTER (WHERE {})").format(sql.SQL(" AND ").join(conditions))


def _any(*conditions: sql.Composable) -> sql.Composable:
    return sql.SQL("CASE WHEN {} > 0 THEN 1 ELSE 0 END").format(_filtered("count(*)", *conditions))


def _total(*conditions: sql.Composable) -> sql.Composable:
    return sql.SQL("coalesce({}, 0)").format(_filtered("sum(e.value)", *conditions))


def _values(m: MetricSpec, cov: bool) -> list[sql.Composable]:
    """Per-unit expressions (aggregates over the unit's events) of y, then x, d, dx as present."""
    win = _window(m)
    out: list[sql.Composable] = []
    if m.kind == "conversion":
        out.append(_any(_is(m.event), win))
        if cov:
            out.append(_any(_is(m.event), PRE))
    elif m.kind in ("mean", "ratio"):
        out.append(_total(_is(m.event), win))
        if cov:
            out.append(_total(_is(m.event), PRE))
        if m.kind == "ratio":
            out.append(_total(_is(m.denominator), win))
            if cov:
                out.append(_total(_is(m.denominator), PRE))
    elif m.kind == "count":
        out.append(_filtered("count(*)", _is(m.event), win))
        if cov:
            out.append(_filtered("count(*)", _is(m.event), PRE))
    elif m.kind == "retention":
        day = m.retention_day or 0
        on_day = sql.SQL("e.ts >= {} AND e.ts < {}").format(_after(24 * day), _after(24 * (day + 1)))
        out.append(_any(_is(m.event), on_day))
        if cov:
            out.append(_any(_is(m.event), PRE))
    elif m.kind == "ltv":
        by_day = sql.SQL("e.ts >= a.first_seen AND e.ts < {}").format(_after(24 * (m.ltv_day or 0)))
        out.append(_total(_is(m.event), by_day))
        if cov:
            out.append(_total(_is(m.event), PRE))
    elif m.kind == "funnel":
        steps = m.steps
        # The time each step was first reached at or after the previous one: the first step's
        # earliest time, then for each middle step the earliest of its times not before that.
        reached = _filtered("min(e.ts)", _is(steps[0]), win)
        for step in steps[1:-1]:
            times = _filtered("array_agg(e.ts)", _is(step), win)
            reached = sql.SQL("(SELECT min(t) FROM unnest({}) AS t WHERE t >= {})").format(times, reached)
        last = _filtered("max(e.ts)", _is(steps[-1]), win)
        out.append(sql.SQL("CASE WHEN {} >= {} THEN 1 ELSE 0 END").format(last, reached))
        if cov:
            out.append(_any(_is(steps[-1]), PRE))
    else:
        raise ValueError(f"Unknown metric kind {m.kind!r}.")
    return out


def _upper_hours(metrics: Sequence[MetricSpec]) -> float | None:
    """Events later than every metric's window are skipped (None when a window is open)."""
    ends: list[float] = []
    for m in metrics:
        if m.kind == "retention":
            ends.append(24.0 * ((m.retention_day or 0) + 1))
        elif m.kind == "ltv":
            ends.append(24.0 * (m.ltv_day or 0))
        elif m.window_hours is None:
            return None
        else:
            ends.append(float(m.window_hours))
    return max(ends) if ends else 0.0


def rollup_query(spec: ReadoutSpec, part: int, *, dirty_table: str | None) -> sql.Composed:
    """INSERT of one part of the rollup rows of the phase's units (all, or, replacing their
    rows, those listed in `dirty_table`).

    Per unit, one aggregate over the unit's events (a lateral subquery read from the
    (unit, ts) index that includes name and value), every metric a filtered aggregate. This
    avoids a hash aggregation with one group per unit, which would spill to disk at a million
    units, and it costs the same per unit for a full rebuild as for a few recomputed units.
    """
    slots = layout(spec)
    metrics = [m for m, s in zip(spec.metrics, slots, strict=True) if s.part == part]
    part_slots = [s for s in slots if s.part == part]
    cov = spec.lookback_hours > 0
    columns: list[sql.Composable] = []
    values: list[sql.Composable] = []
    for m, slot in zip(metrics, part_slots, strict=True):
        targets = [c for c in (slot.y, slot.x, slot.d, slot.dx) if c is not None]
        columns.extend(_col(c) for c in targets)
        values.extend(_values(m, cov))
    names = sorted(set().union(*(m.events() for m in metrics))) if metrics else []
    lower = sql.SQL("a.first_seen - interval {}").format(_lit(f"{spec.lookback_hours} hours")) if cov else \
        sql.SQL("a.first_seen")
    upper_hours = _upper_hours(metrics)
    upper = sql.SQL("") if upper_hours is None else sql.SQL(" AND e.ts < {}").format(_after(upper_hours))
    # The recomputed units' assignments were copied into the dirty table: read them there.
    source = sql.Identifier(dirty_table or "experiments_assignment")
    slices = _slices(spec)
    conflict: sql.Composable = sql.SQL("")
    if dirty_table is not None:
        # An upsert probes the primary key per unit, where deleting the old rows first would scan.
        updates = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in
                   ("variation", "first_seen", "slice_id")]
        updates += [sql.SQL("{0} = EXCLUDED.{0}").format(c) for c in columns]
        conflict = sql.SQL("ON CONFLICT (phase_id, part, unit_id) DO UPDATE SET {}").format(
            sql.SQL(", ").join(updates))
    return sql.SQL(
        """
INSERT INTO {table} (phase_id, part, unit_id, variation, first_seen, slice_id{columns})
SELECT a.phase_id, {part}, a.unit_id, a.variation, a.first_seen, s.id{outputs}
FROM {source} a
JOIN experiments_slicekey s ON s.phase_id = {phase} AND s.slices = {slices}
CROSS JOIN LATERAL (
    SELECT {values}
    FROM experiments_event e
    WHERE e.unit_id = a.unit_id AND e.name = ANY({names}) AND e.ts >= {lower}{upper}
) p
WHERE a.phase_id = {phase} AND NOT a.multiple
{conflict}
"""
    ).format(
        table=rollup_table(spec.phase_id),
        source=source,
        conflict=conflict,
        columns=sql.SQL("").join(sql.SQL(", ") + c for c in columns),
        part=_lit(part),
        slices=slices,
        outputs=sql.SQL("").join(sql.SQL(", p.{}").format(sql.Identifier(f"c{i}")) for i in range(len(values))),
        values=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(v, sql.Identifier(f"c{i}")) for i, v in enumerate(values)
        ) if values else sql.SQL("1 AS c"),
        names=_lit(names),
        lower=lower,
        upper=upper,
        phase=_lit(spec.phase_id),
    )


def _slices(spec: ReadoutSpec) -> sql.Composable:
    """The unit's slice values, as stored in experiments_slicekey."""
    values = sql.SQL(", ").join(sql.SQL("a.attributes ->> {}").format(_lit(attr)) for attr in spec.slice_attributes)
    return sql.SQL("ARRAY[{}]::text[]").format(values)


def slice_keys_query(spec: ReadoutSpec, *, dirty_table: str | None) -> sql.Composed:
    """Number the slice combinations of the phase's units (all, or those in `dirty_table`)."""
    return sql.SQL(
        """
INSERT INTO experiments_slicekey (phase_id, slices)
SELECT DISTINCT {phase}::bigint, {slices}
FROM {source} a
WHERE a.phase_id = {phase} AND NOT a.multiple
ON CONFLICT (phase_id, slices) DO NOTHING
"""
    ).format(phase=_lit(spec.phase_id), slices=_slices(spec),
             source=sql.Identifier(dirty_table or "experiments_assignment"))


def rollup_drop(cur: psycopg.Cursor[Any], phase_ids: Sequence[int]) -> None:
    """Forget the rollups of these phases (the next readout of one rebuilds it)."""
    for phase_id in phase_ids:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rollup_table(phase_id)))
    cur.execute("DELETE FROM experiments_slicekey WHERE phase_id = ANY(%s)", (list(phase_ids),))
    cur.execute("DELETE FROM experiments_readoutstate WHERE phase_id = ANY(%s)", (list(phase_ids),))


def _scalar(cur: psycopg.Cursor[Any], query: str | sql.SQL | sql.Composed, params: Any = None) -> Any:
    cur.execute(query, params)
    row = cur.fetchone()
    return None if row is None else row[0]


def _parts(spec: ReadoutSpec) -> range:
    slots = layout(spec)
    return range((max(s.part for s in slots) + 1) if slots else 1)


def rollup_refresh(
    cur: psycopg.Cursor[Any], spec: ReadoutSpec, *, force_full: bool = False, work_mem: str = "256MB"
) -> RollupResult:
    """Bring the phase's rollup up to date; call inside a transaction (holding the readout lock)."""
    for metric in spec.metrics:
        if metric.kind not in KINDS:
            raise ValueError(f"Metric {metric.key!r} has an unknown kind {metric.kind!r}.")
    cur.execute(sql.SQL("SET LOCAL work_mem = {}").format(_lit(work_mem)))
    # A readout's statements run once each: compiling them (JIT) costs more than it saves.
    cur.execute("SET LOCAL jit = off")
    digest = spec.layout_hash()
    cur.execute("SELECT layout_hash, watermark, units FROM experiments_readoutstate WHERE phase_id = %s",
                (spec.phase_id,))
    state = cur.fetchone()
    now: datetime = _scalar(cur, sql.SQL("SELECT now()"))
    full = force_full or state is None or state[0] != digest
    table = rollup_table(spec.phase_id)
    exists = _scalar(cur, "SELECT to_regclass(%s) IS NOT NULL", (f"experiments_unitrollup_p{int(spec.phase_id)}",))
    if not exists:
        # Room on every page lets the upserts of recomputed units update in place (HOT).
        cur.execute(sql.SQL(
            "CREATE UNLOGGED TABLE {} PARTITION OF experiments_unitrollup FOR VALUES IN ({}) WITH (fillfactor = 85)"
        ).format(table, _lit(spec.phase_id)))
        full = True
    if not full and state is not None and state[2] > 0:
        # An unlogged table is emptied by a crash: rebuild rather than trust the bookkeeping.
        full = not _scalar(cur, sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table))
    parts = _parts(spec)
    units = int(state[2]) if state is not None else 0
    if full:
        # Emptying the partition leaves no dead rows behind, unlike deleting a million of them.
        cur.execute(sql.SQL("TRUNCATE {}").format(table))
        cur.execute("DELETE FROM experiments_slicekey WHERE phase_id = %s", (spec.phase_id,))
        cur.execute(slice_keys_query(spec, dirty_table=None))
        recomputed = 0
        for part in parts:
            cur.execute(rollup_query(spec, part, dirty_table=None))
            recomputed = max(recomputed, max(cur.rowcount, 0))
        units = recomputed
    else:
        assert state is not None
        since = state[1] - WATERMARK_OVERLAP
        # The units to recompute, with their assignment rows: those exposed or re-exposed, and
        # those with events received, since the previous readout (minus the overlap).
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS experiments_dirty (unit_id bigint PRIMARY KEY, phase_id bigint, "
            "variation smallint, first_seen timestamptz, attributes jsonb, multiple boolean) ON COMMIT DROP"
        )
        cur.execute("TRUNCATE experiments_dirty")
        cur.execute(
            """
            INSERT INTO experiments_dirty (unit_id, phase_id, variation, first_seen, attributes, multiple)
            SELECT a.unit_id, a.phase_id, a.variation, a.first_seen, a.attributes, a.multiple
            FROM experiments_assignment a
            WHERE a.phase_id = %(phase)s AND a.unit_id IN (
                SELECT unit_id FROM experiments_assignment WHERE phase_id = %(phase)s AND updated_at >= %(since)s
                UNION
                SELECT unit_id FROM experiments_event WHERE received_at >= %(since)s
            )
            """,
            {"phase": spec.phase_id, "since": since},
        )
        recomputed = max(cur.rowcount, 0)
        if recomputed:
            # Temporary tables get no automatic statistics: without them the planner guesses a
            # large table and hashes the whole rollup partition to delete a few rows.
            cur.execute("ANALYZE experiments_dirty")
            # Units newly seen in a second variation leave the analysis.
            cur.execute(
                sql.SQL("DELETE FROM {} r USING experiments_dirty d WHERE d.multiple AND r.phase_id = {} "
                        "AND r.part = ANY({}) AND r.unit_id = d.unit_id")
                .format(table, _lit(spec.phase_id), _lit(list(parts)))
            )
            cur.execute(slice_keys_query(spec, dirty_table="experiments_dirty"))
            for part in parts:
                cur.execute(rollup_query(spec, part, dirty_table="experiments_dirty"))
    if full or recomputed > max(units, 1) // 10:
        # Fresh statistics keep the aggregation on a hash plan.
        cur.execute(sql.SQL("ANALYZE {}").format(table))
    cur.execute(
        """
        INSERT INTO experiments_readoutstate (phase_id, layout_hash, watermark, rebuilt_at, refreshed_at, units)
        VALUES (%(phase)s, %(layout)s, %(now)s, %(now)s, %(now)s, %(units)s)
        ON CONFLICT (phase_id) DO UPDATE SET
            layout_hash = EXCLUDED.layout_hash, watermark = EXCLUDED.watermark,
            rebuilt_at = CASE WHEN %(full)s THEN EXCLUDED.rebuilt_at ELSE experiments_readoutstate.rebuilt_at END,
            refreshed_at = EXCLUDED.refreshed_at, units = EXCLUDED.units
        """,
        {"phase": spec.phase_id, "layout": digest, "now": now, "units": units, "full": full},
    )
    return RollupResult(mode="full" if full else "incremental", units_recomputed=recomputed, units=units)


def rollup_rebuild(cur: psycopg.Cursor[Any], spec: ReadoutSpec, *, work_mem: str = "256MB") -> RollupResult:
    """Rebuild a population's rollup from its assignment rows in full, without the incremental
    bookkeeping (holdout readouts: their populations grow from every flag in scope, and a
    full pass over them costs what an experiment's first readout does)."""
    for metric in spec.metrics:
        if metric.kind not in KINDS:
            raise ValueError(f"Metric {metric.key!r} has an unknown kind {metric.kind!r}.")
    cur.execute(sql.SQL("SET LOCAL work_mem = {}").format(_lit(work_mem)))
    cur.execute("SET LOCAL jit = off")
    table = rollup_table(spec.phase_id)
    cur.execute(sql.SQL(
        "CREATE UNLOGGED TABLE IF NOT EXISTS {} PARTITION OF experiments_unitrollup FOR VALUES IN ({}) "
        "WITH (fillfactor = 85)"
    ).format(table, _lit(spec.phase_id)))
    cur.execute(sql.SQL("TRUNCATE {}").format(table))
    cur.execute("DELETE FROM experiments_slicekey WHERE phase_id = %s", (spec.phase_id,))
    cur.execute(slice_keys_query(spec, dirty_table=None))
    units = 0
    for part in _parts(spec):
        cur.execute(rollup_query(spec, part, dirty_table=None))
        units = max(units, max(cur.rowcount, 0))
    cur.execute(sql.SQL("ANALYZE {}").format(table))
    return RollupResult(mode="full", units_recomputed=units, units=units)


def rollup_units_record(cur: psycopg.Cursor[Any], phase_id: int, units: int) -> None:
    """Store the phase's unit count once the aggregate has counted them."""
    cur.execute("UPDATE experiments_readoutstate SET units = %s WHERE phase_id = %s", (units, phase_id))


def _mature(m: MetricSpec, analysis_end: datetime | None) -> sql.Composable | None:
    """The units this metric counts at `analysis_end` (None: every unit)."""
    after = m.mature_after()
    if after is None or analysis_end is None:
        return None
    return sql.SQL("first_seen <= {}").format(_lit(analysis_end - after))


def percentile_caps(
    cur: psycopg.Cursor[Any], spec: ReadoutSpec, analysis_end: datetime | None = None
) -> dict[str, float | None]:
    """Per percentile-capped metric, the percentile of the non-zero per-unit values (pooled arms),
    of the units the metric counts at `analysis_end` (LTV: the mature ones).

    percentile_cont interpolates linearly between the closest ranks, as numpy's default does.
    """
    caps: dict[str, float | None] = {}
    slots = layout(spec)
    for part in _parts(spec):
        wanted = [
            (m, s) for m, s in zip(spec.metrics, slots, strict=True)
            if s.part == part and m.capping == "percentile" and m.capping_value is not None
            and m.kind in CAPPABLE_KINDS
        ]
        if not wanted:
            continue
        parts = [
            sql.SQL("percentile_cont({q}) WITHIN GROUP (ORDER BY {c}) FILTER (WHERE {c} <> 0{mature})").format(
                q=_lit(float(m.capping_value or 0)), c=_col(s.y),
                mature=sql.SQL("") if (cond := _mature(m, analysis_end)) is None else sql.SQL(" AND ") + cond,
            )
            for m, s in wanted
        ]
        cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE part = {}").format(
                sql.SQL(", ").join(parts), rollup_table(spec.phase_id), _lit(part)
            )
        )
        row = cur.fetchone()
        assert row is not None
        caps.update({m.key: (None if v is None else float(v)) for (m, _), v in zip(wanted, row, strict=True)})
    return caps


def _cap(m: MetricSpec, caps: dict[str, float | None]) -> float | None:
    if m.kind not in CAPPABLE_KINDS:
        return None
    if m.capping == "percentile":
        return caps.get(m.key)
    if m.capping == "absolute":
        return m.capping_value
    return None


def aggregate(
    cur: psycopg.Cursor[Any], spec: ReadoutSpec, *, caps: dict[str, float | None], analysis_end: datetime
) -> list[AggregateRow]:
    """Sufficient statistics per variation and combination of slice values."""
    slots = layout(spec)
    merged: dict[tuple[int, tuple[str | None, ...]], tuple[int, list[tuple[float | None, ...] | None]]] = {}
    null = sql.SQL("NULL::float8")
    for part in _parts(spec):
        sums: list[sql.Composable] = []
        members = [(i, m, s) for i, (m, s) in enumerate(zip(spec.metrics, slots, strict=True)) if s.part == part]
        for _, m, s in members:
            cap = _cap(m, caps)

            def ref(column: int | None, capped: bool, cap: float | None = cap) -> sql.Composable:
                if column is None:
                    return null
                if capped and cap is not None:
                    return sql.SQL("least({}, {})").format(_col(column), _lit(cap))
                return _col(column)

            y, x, d, dx = ref(s.y, True), ref(s.x, True), ref(s.d, False), ref(s.dx, False)
            cond: sql.Composable = sql.SQL("")
            mature = _mature(m, analysis_end)
            if mature is not None:
                # Retention and LTV: only units whose day N has ended by the analysis end.
                cond = sql.SQL(" FILTER (WHERE {})").format(mature)
            binary = m.kind in BINARY_KINDS

            def total(*factors: sql.Composable) -> sql.Composable:
                return sql.SQL("sum({})").format(sql.SQL(" * ").join(factors))

            terms = [sql.SQL("count(*)"), total(y), total(y) if binary else total(y, y), total(x),
                     total(x) if binary else total(x, x), total(x, y)]
            if m.kind == "ratio":
                terms += [total(d), total(d, d), total(y, d), total(dx), total(dx, dx), total(y, dx), total(x, d),
                          total(x, dx), total(d, dx)]
            sums += [t + cond for t in terms]
        query = sql.SQL(
            """
SELECT variation, slice_id, count(*){sums}
FROM {table}
WHERE part = {part}
GROUP BY variation, slice_id
"""
        ).format(sums=sql.SQL("").join(sql.SQL(", ") + t for t in sums), table=rollup_table(spec.phase_id),
                 part=_lit(part))
        cur.execute(query)
        records = cur.fetchall()
        cur.execute("SELECT id, slices FROM experiments_slicekey WHERE phase_id = %s", (spec.phase_id,))
        names = {int(i): tuple(values or ()) for i, values in cur.fetchall()}
        for record in records:
            key = (int(record[0]), names.get(int(record[1]), ()))
            units, per_metric = merged.get(key, (int(record[2]), [None] * len(spec.metrics)))
            values = list(record[3:])
            start = 0
            for i, m, _ in members:
                width = len(metric_columns(m.kind))
                per_metric[i] = tuple(None if v is None else float(v) for v in values[start:start + width])
                start += width
            merged[key] = (units, per_metric)
    rows = []
    for (variation, slice_values), (units, per_metric) in sorted(merged.items(), key=lambda kv: (kv[0][0], [
            (v is None, v or "") for v in kv[0][1]])):
        filled = tuple(p if p is not None else (0.0,) * len(metric_columns(m.kind))
                       for p, m in zip(per_metric, spec.metrics, strict=True))
        rows.append(AggregateRow(variation=variation, slices=slice_values, units=units, sums=filled))
    return rows


def multiple_exposures(cur: psycopg.Cursor[Any], phase_id: int) -> int:
    """Units of the phase seen in more than one variation (a partial index keeps this cheap)."""
    cur.execute("SELECT count(*) FROM experiments_assignment WHERE phase_id = %s AND multiple", (phase_id,))
    row = cur.fetchone()
    assert row is not None
    return int(row[0])
