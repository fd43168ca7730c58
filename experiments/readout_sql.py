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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "SLOTS",
    "AggregateRow",
    "MetricSpec",
    "ReadoutSpec",
    "RollupResult",
    "aggregate",
    "metric_columns",
    "percentile_caps",
    "rollup_refresh",
]

# Per metric, the rollup's `vals` array holds four slots: y, x (covariate), d, dx.
SLOTS = 4
# Rows received this long before the previous readout began are looked at again: an ingest
# transaction that began before it but committed after it is caught by the next readout.
WATERMARK_OVERLAP = timedelta(minutes=5)
BINARY_KINDS = frozenset({"conversion", "retention", "funnel"})
CAPPABLE_KINDS = frozenset({"mean", "count", "ratio"})


@dataclass(frozen=True, slots=True)
class MetricSpec:
    key: str
    kind: str
    event: str = ""
    denominator: str = ""
    steps: tuple[str, ...] = ()
    retention_day: int | None = None
    window_hours: int | None = None
    capping: str = "none"
    capping_value: float | None = None

    def events(self) -> set[str]:
        names = set(self.steps) if self.kind == "funnel" else {self.event}
        if self.kind == "ratio":
            names.add(self.denominator)
        return names


@dataclass(frozen=True, slots=True)
class ReadoutSpec:
    phase_id: int
    metrics: tuple[MetricSpec, ...]
    # 0 turns the pre-exposure covariate off.
    lookback_hours: int = 0
    slice_attributes: tuple[str, ...] = ()

    def layout_hash(self) -> str:
        """Identifies what the rollup holds; capping is applied later and does not count."""
        layout = {
            "metrics": [
                {k: v for k, v in asdict(m).items() if k not in ("capping", "capping_value")} for m in self.metrics
            ],
            "lookback_hours": self.lookback_hours,
            "slices": list(self.slice_attributes),
        }
        return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RollupResult:
    mode: str  # "full", "incremental"
    units_recomputed: int
    units: int


@dataclass(frozen=True, slots=True)
class AggregateRow:
    variation: int
    slices: tuple[str | None, ...]
    units: int
    # Per metric, the sums named by `metric_columns`.
    sums: tuple[tuple[float | None, ...], ...]


def _lit(value: Any) -> sql.Composable:
    return sql.Literal(value)


def _hours(hours: float) -> sql.Composable:
    # Hours, not days: timestamptz + '<n> hours' is plain arithmetic, without time-zone rules.
    return sql.SQL("interval {}").format(_lit(f"{hours} hours"))


class _Bounds:
    """Per-unit time bounds computed once per unit (columns of the unit subquery)."""

    def __init__(self) -> None:
        self.columns: dict[float, str] = {}

    def after(self, hours: float) -> sql.Composable:
        name = self.columns.setdefault(hours, f"b{len(self.columns)}")
        return sql.SQL("u.{}").format(sql.Identifier(name))

    def select_list(self) -> sql.Composable:
        parts = [
            sql.SQL("a2.first_seen + {} AS {}").format(_hours(h), sql.Identifier(name))
            for h, name in self.columns.items()
        ]
        return sql.SQL("").join(sql.SQL(", ") + p for p in parts)


def _window(m: MetricSpec, bounds: _Bounds) -> sql.Composable:
    if m.window_hours is None:
        return sql.SQL("e.ts >= u.fe")
    return sql.SQL("e.ts >= u.fe AND e.ts < {}").format(bounds.after(m.window_hours))


def _is(name: str) -> sql.Composable:
    return sql.SQL("e.name = {}").format(_lit(name))


PRE = sql.SQL("e.ts < u.fe")


def _per_unit(spec: ReadoutSpec) -> tuple[list[sql.Composable], list[sql.Composable], _Bounds]:
    """Aggregates over a unit's events, and the expressions of the `vals` slots built from them."""
    bounds = _Bounds()
    aggs: list[sql.Composable] = []
    slots: list[sql.Composable] = []
    cov = spec.lookback_hours > 0
    null = sql.SQL("NULL")

    def agg(expr: str, cond: sql.Composable, alias: str) -> sql.Composable:
        aggs.append(sql.SQL(expr + " FILTER (WHERE {}) AS {}").format(cond, sql.Identifier(alias)))
        return sql.SQL("p.{}").format(sql.Identifier(alias))

    def any_of(ref: sql.Composable) -> sql.Composable:
        return sql.SQL("CASE WHEN {} > 0 THEN 1 ELSE 0 END").format(ref)

    def total(ref: sql.Composable) -> sql.Composable:
        return sql.SQL("coalesce({}, 0)").format(ref)

    for i, m in enumerate(spec.metrics):
        p = f"m{i}_"
        win = _window(m, bounds)
        y: sql.Composable
        x: sql.Composable = null
        d: sql.Composable = null
        dx: sql.Composable = null
        if m.kind == "conversion":
            y = any_of(agg("count(*)", sql.SQL("{} AND {}").format(_is(m.event), win), p + "y"))
            if cov:
                x = any_of(agg("count(*)", sql.SQL("{} AND {}").format(_is(m.event), PRE), p + "x"))
        elif m.kind in ("mean", "ratio"):
            y = total(agg("sum(e.value)", sql.SQL("{} AND {}").format(_is(m.event), win), p + "y"))
            if cov:
                x = total(agg("sum(e.value)", sql.SQL("{} AND {}").format(_is(m.event), PRE), p + "x"))
            if m.kind == "ratio":
                d = total(agg("sum(e.value)", sql.SQL("{} AND {}").format(_is(m.denominator), win), p + "d"))
                if cov:
                    dx = total(agg("sum(e.value)", sql.SQL("{} AND {}").format(_is(m.denominator), PRE), p + "dx"))
        elif m.kind == "count":
            y = agg("count(*)", sql.SQL("{} AND {}").format(_is(m.event), win), p + "y")
            y = total(y)
            if cov:
                x = total(agg("count(*)", sql.SQL("{} AND {}").format(_is(m.event), PRE), p + "x"))
        elif m.kind == "retention":
            day = m.retention_day or 0
            cond = sql.SQL("{} AND e.ts >= {} AND e.ts < {}").format(
                _is(m.event), bounds.after(24 * day), bounds.after(24 * (day + 1))
            )
            y = any_of(agg("count(*)", cond, p + "y"))
            if cov:
                x = any_of(agg("count(*)", sql.SQL("{} AND {}").format(_is(m.event), PRE), p + "x"))
        elif m.kind == "funnel":
            steps = m.steps
            first = agg("min(e.ts)", sql.SQL("{} AND {}").format(_is(steps[0]), win), p + "t0")
            reached = first
            for j, step in enumerate(steps[1:-1], start=1):
                times = agg("array_agg(e.ts)", sql.SQL("{} AND {}").format(_is(step), win), f"{p}a{j}")
                # The first time step j was reached at or after step j-1.
                reached = sql.SQL("(SELECT min(t) FROM unnest({}) AS t WHERE t >= {})").format(times, reached)
            last = agg("max(e.ts)", sql.SQL("{} AND {}").format(_is(steps[-1]), win), p + "tl")
            y = sql.SQL("CASE WHEN {} >= {} THEN 1 ELSE 0 END").format(last, reached)
            if cov:
                x = any_of(agg("count(*)", sql.SQL("{} AND {}").format(_is(steps[-1]), PRE), p + "x"))
        else:
            raise ValueError(f"Unknown metric kind {m.kind!r}.")
        slots.extend([y, x, d, dx])
    return aggs, slots, bounds


def _upper_bound(spec: ReadoutSpec, bounds: _Bounds) -> sql.Composable:
    """Events later than every metric's window are skipped (none when a window is open)."""
    ends: list[float] = []
    for m in spec.metrics:
        if m.kind == "retention":
            ends.append(24.0 * ((m.retention_day or 0) + 1))
        elif m.window_hours is None:
            return sql.SQL("")
        else:
            ends.append(float(m.window_hours))
    return sql.SQL(" AND e.ts < {}").format(bounds.after(max(ends)))


def rollup_query(spec: ReadoutSpec, *, dirty_table: str | None) -> sql.Composed:
    """INSERT of the rollup rows of the phase's units (all, or those listed in `dirty_table`)."""
    aggs, slots, bounds = _per_unit(spec)
    upper = _upper_bound(spec, bounds)
    lower = (
        sql.SQL("a2.first_seen - {}").format(_hours(spec.lookback_hours))
        if spec.lookback_hours > 0
        else sql.SQL("a2.first_seen")
    )
    names = sorted(set().union(*(m.events() for m in spec.metrics)))
    scope: sql.Composable = sql.SQL("")
    scope2: sql.Composable = sql.SQL("")
    if dirty_table is not None:
        scope = sql.SQL(" JOIN {} dirty ON dirty.unit_id = a.unit_id").format(sql.Identifier(dirty_table))
        scope2 = sql.SQL(" JOIN {} dirty ON dirty.unit_id = a2.unit_id").format(sql.Identifier(dirty_table))
    slices = sql.SQL(", ").join(
        sql.SQL("a.attributes ->> {}").format(_lit(attr)) for attr in spec.slice_attributes
    )
    return sql.SQL(
        """
INSERT INTO experiments_unitrollup (phase_id, unit_id, variation, first_seen, slices, vals)
SELECT a.phase_id, a.unit_id, a.variation, a.first_seen, ARRAY[{slices}]::text[], ARRAY[{slots}]::float8[]
FROM experiments_assignment a{scope}
LEFT JOIN (
    SELECT u.unit_id, {aggs}
    FROM (
        SELECT a2.unit_id, a2.first_seen AS fe, {lower} AS lo{bounds}
        FROM experiments_assignment a2{scope2}
        WHERE a2.phase_id = {phase} AND NOT a2.multiple
    ) u
    JOIN experiments_event e ON e.unit_id = u.unit_id
    WHERE e.name = ANY({names}) AND e.ts >= u.lo{upper}
    GROUP BY u.unit_id
) p ON p.unit_id = a.unit_id
WHERE a.phase_id = {phase} AND NOT a.multiple
"""
    ).format(
        slices=slices,
        slots=sql.SQL(", ").join(slots),
        scope=scope,
        scope2=scope2,
        aggs=sql.SQL(", ").join(aggs),
        lower=lower,
        bounds=bounds.select_list(),
        phase=_lit(spec.phase_id),
        names=_lit(names),
        upper=upper,
    )


def _scalar(cur: psycopg.Cursor[Any], query: sql.SQL | sql.Composed, params: Any = None) -> Any:
    cur.execute(query, params)
    row = cur.fetchone()
    return None if row is None else row[0]


def rollup_refresh(
    cur: psycopg.Cursor[Any], spec: ReadoutSpec, *, force_full: bool = False, work_mem: str = "256MB"
) -> RollupResult:
    """Bring the phase's rollup up to date; call inside a transaction (holding the readout lock)."""
    cur.execute(sql.SQL("SET LOCAL work_mem = {}").format(_lit(work_mem)))
    layout = spec.layout_hash()
    cur.execute(
        "SELECT layout_hash, watermark FROM experiments_readoutstate WHERE phase_id = %s", (spec.phase_id,)
    )
    state = cur.fetchone()
    now: datetime = _scalar(cur, sql.SQL("SELECT now()"))
    full = force_full or state is None or state[0] != layout
    if full:
        cur.execute("DELETE FROM experiments_unitrollup WHERE phase_id = %s", (spec.phase_id,))
        cur.execute(rollup_query(spec, dirty_table=None))
        recomputed = max(cur.rowcount, 0)
    else:
        assert state is not None
        since = state[1] - WATERMARK_OVERLAP
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS experiments_dirty (unit_id bigint PRIMARY KEY) ON COMMIT DROP")
        cur.execute("TRUNCATE experiments_dirty")
        cur.execute(
            """
            INSERT INTO experiments_dirty (unit_id)
            SELECT unit_id FROM experiments_assignment WHERE phase_id = %(phase)s AND updated_at >= %(since)s
            UNION
            SELECT DISTINCT a.unit_id
            FROM experiments_event e
            JOIN experiments_assignment a ON a.phase_id = %(phase)s AND a.unit_id = e.unit_id
            WHERE e.received_at >= %(since)s
            """,
            {"phase": spec.phase_id, "since": since},
        )
        recomputed = max(cur.rowcount, 0)
        cur.execute("ANALYZE experiments_dirty")
        cur.execute(
            "DELETE FROM experiments_unitrollup r USING experiments_dirty d "
            "WHERE r.phase_id = %s AND r.unit_id = d.unit_id",
            (spec.phase_id,),
        )
        if recomputed:
            cur.execute(rollup_query(spec, dirty_table="experiments_dirty"))
    units = int(_scalar(cur, sql.SQL("SELECT count(*) FROM experiments_unitrollup WHERE phase_id = {}").format(
        _lit(spec.phase_id))))
    cur.execute(
        """
        INSERT INTO experiments_readoutstate (phase_id, layout_hash, watermark, rebuilt_at, refreshed_at, units)
        VALUES (%(phase)s, %(layout)s, %(now)s, %(now)s, %(now)s, %(units)s)
        ON CONFLICT (phase_id) DO UPDATE SET
            layout_hash = EXCLUDED.layout_hash, watermark = EXCLUDED.watermark,
            rebuilt_at = CASE WHEN %(full)s THEN EXCLUDED.rebuilt_at ELSE experiments_readoutstate.rebuilt_at END,
            refreshed_at = EXCLUDED.refreshed_at, units = EXCLUDED.units
        """,
        {"phase": spec.phase_id, "layout": layout, "now": now, "units": units, "full": full},
    )
    return RollupResult(mode="full" if full else "incremental", units_recomputed=recomputed, units=units)


def percentile_caps(cur: psycopg.Cursor[Any], spec: ReadoutSpec) -> dict[str, float | None]:
    """Per percentile-capped metric, the percentile of the non-zero per-unit values (pooled arms).

    percentile_cont interpolates linearly between the closest ranks, as numpy's default does.
    """
    wanted = [
        (i, m) for i, m in enumerate(spec.metrics)
        if m.capping == "percentile" and m.capping_value is not None and m.kind in CAPPABLE_KINDS
    ]
    if not wanted:
        return {}
    parts = [
        sql.SQL("percentile_cont({q}) WITHIN GROUP (ORDER BY vals[{k}]) FILTER (WHERE vals[{k}] <> 0)").format(
            q=_lit(float(m.capping_value or 0)), k=_lit(i * SLOTS + 1)
        )
        for i, m in wanted
    ]
    cur.execute(
        sql.SQL("SELECT {} FROM experiments_unitrollup WHERE phase_id = {}").format(
            sql.SQL(", ").join(parts), _lit(spec.phase_id)
        )
    )
    row = cur.fetchone()
    assert row is not None
    return {m.key: (None if v is None else float(v)) for (_, m), v in zip(wanted, row, strict=True)}


def metric_columns(kind: str) -> tuple[str, ...]:
    """Names of the sums `aggregate` returns for a metric of this kind, in order."""
    columns = ["users", "main_sum", "main_sum_squares", "covariate_sum", "covariate_sum_squares",
               "main_covariate_sum_product"]
    if kind == "ratio":
        columns += ["denominator_sum", "denominator_sum_squares", "main_denominator_sum_product",
                    "denominator_pre_sum", "denominator_pre_sum_squares", "main_post_denominator_pre_sum_product",
                    "main_pre_denominator_post_sum_product", "main_pre_denominator_pre_sum_product",
                    "denominator_post_denominator_pre_sum_product"]
    return tuple(columns)


def aggregate(
    cur: psycopg.Cursor[Any], spec: ReadoutSpec, *, caps: dict[str, float | None], analysis_end: datetime
) -> list[AggregateRow]:
    """Sufficient statistics per variation and combination of slice values."""
    extract: list[sql.Composable] = []
    sums: list[sql.Composable] = []
    for i, m in enumerate(spec.metrics):
        base = i * SLOTS
        cap = caps.get(m.key) if m.capping == "percentile" else m.capping_value if m.capping == "absolute" else None
        if m.kind not in CAPPABLE_KINDS:
            cap = None

        def slot(k: int, capped: bool, cap: float | None = cap, base: int = base) -> sql.Composable:
            ref = sql.SQL("r.vals[{}]").format(_lit(base + k + 1))
            return sql.SQL("least({}, {})").format(ref, _lit(cap)) if capped and cap is not None else ref

        y, x, d, dx = (f"m{i}{s}" for s in ("y", "x", "d", "dx"))
        extract += [
            sql.SQL("{} AS {}").format(slot(0, True), sql.Identifier(y)),
            sql.SQL("{} AS {}").format(slot(1, True), sql.Identifier(x)),
        ]
        if m.kind == "ratio":
            extract += [
                sql.SQL("{} AS {}").format(slot(2, False), sql.Identifier(d)),
                sql.SQL("{} AS {}").format(slot(3, False), sql.Identifier(dx)),
            ]
        cond: sql.Composable = sql.SQL("")
        if m.kind == "retention":
            # Only units whose day N has ended by the analysis end.
            mature = analysis_end - timedelta(days=(m.retention_day or 0) + 1)
            cond = sql.SQL(" FILTER (WHERE r.first_seen <= {})").format(_lit(mature))
        v = {name: sql.SQL("v.{}").format(sql.Identifier(name)) for name in (y, x, d, dx)}
        binary = m.kind in BINARY_KINDS
        terms: list[sql.Composable] = [
            sql.SQL("count(*)"),
            sql.SQL("sum({})").format(v[y]),
            sql.SQL("sum({})").format(v[y]) if binary else sql.SQL("sum({} * {})").format(v[y], v[y]),
            sql.SQL("sum({})").format(v[x]),
            sql.SQL("sum({})").format(v[x]) if binary else sql.SQL("sum({} * {})").format(v[x], v[x]),
            sql.SQL("sum({} * {})").format(v[x], v[y]),
        ]
        if m.kind == "ratio":
            terms += [
                sql.SQL("sum({})").format(v[d]),
                sql.SQL("sum({} * {})").format(v[d], v[d]),
                sql.SQL("sum({} * {})").format(v[y], v[d]),
                sql.SQL("sum({})").format(v[dx]),
                sql.SQL("sum({} * {})").format(v[dx], v[dx]),
                sql.SQL("sum({} * {})").format(v[y], v[dx]),
                sql.SQL("sum({} * {})").format(v[x], v[d]),
                sql.SQL("sum({} * {})").format(v[x], v[dx]),
                sql.SQL("sum({} * {})").format(v[d], v[dx]),
            ]
        sums += [t + cond for t in terms]
    query = sql.SQL(
        """
SELECT r.variation, r.slices, count(*), {sums}
FROM experiments_unitrollup r
CROSS JOIN LATERAL (SELECT {extract}) v
WHERE r.phase_id = {phase}
GROUP BY r.variation, r.slices
ORDER BY r.variation, r.slices
"""
    ).format(sums=sql.SQL(", ").join(sums), extract=sql.SQL(", ").join(extract), phase=_lit(spec.phase_id))
    cur.execute(query)
    rows: list[AggregateRow] = []
    widths = [len(metric_columns(m.kind)) for m in spec.metrics]
    for record in cur.fetchall():
        values = list(record[3:])
        per_metric: list[tuple[float | None, ...]] = []
        start = 0
        for width in widths:
            per_metric.append(tuple(None if v is None else float(v) for v in values[start:start + width]))
            start += width
        rows.append(AggregateRow(variation=int(record[0]), slices=tuple(record[1] or ()), units=int(record[2]),
                                 sums=tuple(per_metric)))
    return rows


def exposure_counts(cur: psycopg.Cursor[Any], phase_id: int) -> tuple[int, int]:
    """(units exposed in the phase, of which seen in more than one variation)."""
    cur.execute(
        "SELECT count(*), count(*) FILTER (WHERE multiple) FROM experiments_assignment WHERE phase_id = %s",
        (phase_id,),
    )
    row = cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def metric_names(metrics: Sequence[MetricSpec]) -> list[str]:
    return sorted(set().union(*(m.events() for m in metrics))) if metrics else []
