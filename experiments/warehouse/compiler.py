"""The metric catalog compiled to SQL that a warehouse runs: one expression tree, rendered per
engine by sqlglot, with a small table of overrides where its translation is wrong or missing.

The statements are built from the data source's two queries (checked by
`experiments.warehouse.queries`) and compute, inside the warehouse, what the built-in
PostgreSQL path computes (`experiments.readout_sql`, whose docstring defines every per-unit
value):

1. `a`: per unit of the experiment's phase, its first exposure (earliest time, then lowest
   variation), its variation and its slice values; units seen in more than one variation leave.
2. `u`: per unit, every metric's value over its window after the first exposure, the CUPED
   covariate over the lookback before it, the ratio denominators; funnels step by step.
3. Caps (percentiles of the non-zero per-unit values, exact), then per variation and
   combination of slice values: n, Σy, Σy², Σx, Σx², Σxy and the ratio cross products, capped.

Only those sums (a few rows) leave the warehouse. Overrides: exact percentiles are
`quantileExactInclusive` on ClickHouse and `percentile` on Spark (sqlglot would write the
approximate `PERCENTILE_APPROX`); Trino has no exact percentile, so percentile capping is
refused there; ClickHouse timestamps are `DateTime64(6)` (its `DateTime` has whole seconds);
Snowflake's source timestamps pass through `CONVERT_TIMEZONE('UTC', …)` to `TIMESTAMP_NTZ`.
The sums' aliases (`t0`, `t1`, …) never repeat a column's name, which ClickHouse would resolve
to the aggregate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from experiments.readout_spec import (
    BINARY_KINDS,
    CAPPABLE_KINDS,
    AggregateRow,
    MetricSpec,
    ReadoutSpec,
    metric_columns,
)
from experiments.warehouse.queries import EVENT_COLUMNS, EXPOSURE_COLUMNS, query_check

__all__ = ["CompileError", "Design", "ReadoutStatements", "aggregate_rows", "caps_from_row", "compile_readout"]

# Engines whose only percentile is approximate: percentile caps are refused there.
APPROXIMATE_PERCENTILES = frozenset({"trino", "presto", "athena"})


class CompileError(ValueError):
    """The readout cannot be expressed on this engine (the message says why)."""


@dataclass(frozen=True, slots=True)
class Design:
    """The experiment and phase being read out, as the exposure rows name them."""

    experiment: str
    variations: tuple[str, ...]  # keys by position; the first is the control
    phase_start: datetime
    phase_end: datetime | None
    analysis_end: datetime


@dataclass(frozen=True, slots=True)
class ReadoutStatements:
    """The statements of one readout, rendered for one dialect."""

    spec: ReadoutSpec
    design: Design
    dialect: str
    exposure_query: str
    event_query: str
    # Per variation and slice combination: the sums, then per metric in `capped` its percentile
    # cap (`caps_from_row`).
    aggregate: str
    capped: tuple[str, ...]
    multiple: str  # one row: units seen in more than one variation


def _id(name: str) -> exp.Identifier:
    return exp.to_identifier(name)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table)


def _str(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _num(value: float | int) -> exp.Expr:
    return exp.Literal.number(repr(float(value)) if isinstance(value, float) else str(int(value)))


def _timestamp_type(dialect: str) -> exp.DataType:
    if dialect == "clickhouse":
        return exp.DataType.build("DateTime64(6)", dialect="clickhouse")
    if dialect == "snowflake":  # its TIMESTAMP is whatever TIMESTAMP_TYPE_MAPPING says
        return exp.DataType.build("TIMESTAMP_NTZ", dialect="snowflake")
    return exp.DataType.build("TIMESTAMP")


def _source_ts(column: exp.Expr, dialect: str) -> exp.Expr:
    """A source query's timestamp as the statements compare it: UTC, without a zone."""
    if dialect == "snowflake":
        # Snowflake casts a TIMESTAMP_TZ to TIMESTAMP_NTZ at the wall-clock time of the value's
        # own offset: CONVERT_TIMEZONE brings it to UTC first (NTZ and LTZ values are read in the
        # session's time zone, UTC).
        column = exp.ConvertTimezone(target_tz=_str("UTC"), timestamp=column)
    return exp.cast(column, _timestamp_type(dialect))


def _at(value: datetime, dialect: str) -> exp.Expr:
    """A UTC instant as a timestamp literal (without a zone: the sessions run in UTC)."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return exp.cast(_str(text), _timestamp_type(dialect))


def _plus_hours(value: exp.Expr, hours: int) -> exp.Expr:
    if hours == 0:
        return value
    interval = exp.Interval(this=_str(str(abs(hours))), unit=exp.Var(this="HOUR"))
    node = exp.Add if hours > 0 else exp.Sub
    return node(this=value, expression=interval)


def _and(*conditions: exp.Expr) -> exp.Expr:
    return exp.and_(*conditions)


def _case(condition: exp.Expr, then: exp.Expr, otherwise: exp.Expr | None = None) -> exp.Case:
    case = exp.Case().when(condition, then)
    return case.else_(otherwise) if otherwise is not None else case


def _renamed(text: str, dialect: str, required: tuple[str, ...], prefix: str,
             keep: Sequence[str] = ()) -> tuple[exp.Query, dict[str, str]]:
    """The source query with its result columns renamed to `prefix` + position, so that the
    statements refer to them by names that need no quoting in any dialect (and cannot collide
    with an aggregate's alias); returns the new name of each column the readout reads."""
    check = query_check(text, dialect, required)
    if check.errors or check.expression is None:
        raise CompileError("; ".join(check.errors))
    query = check.expression.copy()
    leftmost: exp.Expr = query
    while isinstance(leftmost, exp.SetOperation):
        leftmost = leftmost.this
    if not isinstance(leftmost, exp.Select):
        raise CompileError("The query must be a SELECT.")
    names: dict[str, str] = {}
    wanted = set(required) | set(keep)
    projections = []
    for i, (projection, column) in enumerate(zip(leftmost.selects, check.columns, strict=True)):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        alias = f"{prefix}{i}"
        if column in wanted:
            names[column] = alias
        projections.append(exp.alias_(inner.copy(), alias))
    leftmost.set("expressions", projections)
    return query, names


def _cte(name: str, query: exp.Expr) -> exp.CTE:
    return exp.CTE(this=query, alias=exp.TableAlias(this=_id(name)))


def _slice_name(k: int) -> str:
    return f"s{k}"


class _Builder:
    def __init__(self, spec: ReadoutSpec, design: Design, dialect: str, exposure_query: str, event_query: str):
        self.spec, self.design, self.dialect = spec, design, dialect
        self.cov = spec.lookback_hours > 0
        self.exposures, self.x_names = _renamed(exposure_query, dialect, EXPOSURE_COLUMNS, "x_",
                                                keep=spec.slice_attributes)
        self.events, self.e_names = _renamed(event_query, dialect, EVENT_COLUMNS, "e_")
        self.value_names: list[list[str]] = []  # per metric: y, then x, d, dx as present
        self.funnels: list[exp.CTE] = []
        self.funnel_joins: list[tuple[str, str]] = []  # (cte, alias)

    # Per-unit values ------------------------------------------------------------------

    def _is(self, name: str) -> exp.Expr:
        return exp.EQ(this=_col("name", "e"), expression=_str(name))

    def _window(self, m: MetricSpec) -> exp.Expr:
        start = exp.GTE(this=_col("ts", "e"), expression=_col("first_seen", "a"))
        if m.window_hours is None:
            return start
        return _and(start, exp.LT(this=_col("ts", "e"), expression=_plus_hours(_col("first_seen", "a"),
                                                                                m.window_hours)))

    def _pre(self) -> exp.Expr:
        return _and(
            exp.GTE(this=_col("ts", "e"), expression=_plus_hours(_col("first_seen", "a"), -self.spec.lookback_hours)),
            exp.LT(this=_col("ts", "e"), expression=_col("first_seen", "a")),
        )

    def _any(self, *conditions: exp.Expr) -> exp.Expr:
        fired = exp.Count(this=_case(_and(*conditions), _num(1)))
        return _case(exp.GT(this=fired, expression=_num(0)), _num(1), _num(0))

    def _total(self, *conditions: exp.Expr) -> exp.Expr:
        return exp.Coalesce(this=exp.Sum(this=_case(_and(*conditions), _col("value", "e"))),
                            expressions=[exp.cast(_num(0), exp.DataType.build("DOUBLE"))])

    def _count(self, *conditions: exp.Expr) -> exp.Expr:
        return exp.Count(this=_case(_and(*conditions), _num(1)))

    def _funnel(self, index: int, m: MetricSpec) -> exp.Expr:
        """The step-by-step reach of a funnel: CTEs for the first steps, the last one here."""
        steps, win = m.steps, self._window(m)
        previous: str | None = None
        for j, step in enumerate(steps[:-1]):
            name = f"f{index}_{j}"
            query = (exp.select(exp.alias_(_col("unit_id", "a"), "unit_id"),
                                exp.alias_(exp.Min(this=_col("ts", "e")), "t"))
                     .from_(exp.alias_(exp.to_table("a"), "a"))
                     .join(exp.alias_(exp.to_table("e"), "e"), on=exp.EQ(this=_col("unit_id", "e"),
                                                                         expression=_col("unit_id", "a"))))
            where = [self._is(step), win.copy()]
            if previous is not None:
                query = query.join(exp.alias_(exp.to_table(previous), "p"),
                                   on=exp.EQ(this=_col("unit_id", "p"), expression=_col("unit_id", "a")))
                where.append(exp.GTE(this=_col("ts", "e"), expression=_col("t", "p")))
            query = query.where(_and(*where)).group_by(_col("unit_id", "a"))
            self.funnels.append(_cte(name, query))
            previous = name
        assert previous is not None
        alias = f"r{index}"
        self.funnel_joins.append((previous, alias))
        last = exp.Max(this=_case(_and(self._is(steps[-1]), win), _col("ts", "e")))
        return _case(exp.GTE(this=last, expression=exp.Max(this=_col("t", alias))), _num(1), _num(0))

    def _values(self, index: int, m: MetricSpec) -> list[exp.Expr]:
        win, pre, cov = self._window(m), self._pre(), self.cov
        out: list[exp.Expr] = []
        if m.kind == "conversion":
            out.append(self._any(self._is(m.event), win))
            if cov:
                out.append(self._any(self._is(m.event), pre))
        elif m.kind in ("mean", "ratio"):
            out.append(self._total(self._is(m.event), win))
            if cov:
                out.append(self._total(self._is(m.event), pre))
            if m.kind == "ratio":
                out.append(self._total(self._is(m.denominator), win.copy()))
                if cov:
                    out.append(self._total(self._is(m.denominator), pre.copy()))
        elif m.kind == "count":
            out.append(self._count(self._is(m.event), win))
            if cov:
                out.append(self._count(self._is(m.event), pre))
        elif m.kind == "retention":
            day = m.retention_day or 0
            first = _col("first_seen", "a")
            on_day = _and(exp.GTE(this=_col("ts", "e"), expression=_plus_hours(first, 24 * day)),
                          exp.LT(this=_col("ts", "e"), expression=_plus_hours(first.copy(), 24 * (day + 1))))
            out.append(self._any(self._is(m.event), on_day))
            if cov:
                out.append(self._any(self._is(m.event), pre))
        elif m.kind == "ltv":
            by_day = _and(exp.GTE(this=_col("ts", "e"), expression=_col("first_seen", "a")),
                          exp.LT(this=_col("ts", "e"), expression=_plus_hours(_col("first_seen", "a"),
                                                                              24 * (m.ltv_day or 0))))
            out.append(self._total(self._is(m.event), by_day))
            if cov:
                out.append(self._total(self._is(m.event), pre))
        elif m.kind == "funnel":
            if len(m.steps) < 2:
                raise CompileError(f"Funnel metric {m.key!r} needs at least two steps.")
            out.append(self._funnel(index, m))
            if cov:
                out.append(self._any(self._is(m.steps[-1]), pre))
        else:
            raise CompileError(f"Metric {m.key!r} has an unknown kind {m.kind!r}.")
        return out

    # Statements -----------------------------------------------------------------------

    def ctes(self) -> list[exp.CTE]:
        d, design = self.dialect, self.design
        x = self.x_names
        slices = self.spec.slice_attributes
        variation = exp.Case()
        for position, key in enumerate(design.variations):
            variation = variation.when(exp.EQ(this=_col(x["variation"]), expression=_str(key)), _num(position))
        in_phase = [exp.EQ(this=_col(x["experiment"]), expression=_str(design.experiment)),
                    exp.In(this=_col(x["variation"]), expressions=[_str(k) for k in design.variations]),
                    exp.GTE(this=_col(x["timestamp"]), expression=_at(design.phase_start, d))]
        if design.phase_end is not None:
            in_phase.append(exp.LT(this=_col(x["timestamp"]), expression=_at(design.phase_end, d)))
        text = exp.DataType.build("VARCHAR")
        slice_columns = [
            exp.alias_(exp.cast(_col(x[attr]) if attr in x else exp.null(), text), _slice_name(k))
            for k, attr in enumerate(slices)
        ]
        exposed = (exp.select(exp.alias_(exp.cast(_col(x["unit_id"]), text), "unit_id"),
                              exp.alias_(_source_ts(_col(x["timestamp"]), d), "ts"),
                              exp.alias_(variation, "variation"), *slice_columns)
                   .from_("src_x").where(_and(*in_phase)))
        ranked = exp.select(
            "unit_id", "ts", "variation", *[_slice_name(k) for k in range(len(slices))],
            exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=[_col("unit_id")],
                                  order=exp.Order(expressions=[exp.Ordered(this=_col("ts")),
                                                               exp.Ordered(this=_col("variation"))])), "rn"),
            exp.alias_(exp.Window(this=exp.Min(this=_col("variation")), partition_by=[_col("unit_id")]), "vmin"),
            exp.alias_(exp.Window(this=exp.Max(this=_col("variation")), partition_by=[_col("unit_id")]), "vmax"),
        ).from_("x")
        assigned = (exp.select("unit_id", "variation", exp.alias_(_col("ts"), "first_seen"),
                               *[_slice_name(k) for k in range(len(slices))])
                    .from_("ranked")
                    .where(_and(exp.EQ(this=_col("rn"), expression=_num(1)),
                                exp.EQ(this=_col("vmin"), expression=_col("vmax")))))
        e = self.e_names
        names = sorted(set().union(*(m.events() for m in self.spec.metrics))) if self.spec.metrics else []
        lower = _plus_hours(_at(design.phase_start, d), -self.spec.lookback_hours)
        events = (exp.select(exp.alias_(exp.cast(_col(e["unit_id"]), text), "unit_id"),
                             exp.alias_(_source_ts(_col(e["timestamp"]), d), "ts"),
                             exp.alias_(_col(e["name"]), "name"),
                             exp.alias_(exp.cast(_col(e["value"]), exp.DataType.build("DOUBLE")), "value"))
                  .from_("src_e")
                  .where(_and(exp.In(this=_col(e["name"]), expressions=[_str(n) for n in names] or [_str("")]),
                              exp.GTE(this=_col(e["timestamp"]), expression=lower))))
        values: list[exp.Expr] = []
        for index, m in enumerate(self.spec.metrics):
            computed = self._values(index, m)
            names_ = [f"y{len(values) + j}" for j in range(len(computed))]
            self.value_names.append(names_)
            # Every per-unit value as a double: ClickHouse refuses least(UInt64, Float64).
            double = exp.DataType.build("DOUBLE")
            values.extend(exp.alias_(exp.cast(v, double), n) for v, n in zip(computed, names_, strict=True))
        # `v`: the values of the units with events in reach, grouped by the unit alone. An inner
        # join: a unit without such events has every value 0, added back by `u`'s outer join.
        # Events outside every metric's reach (before the lookback, after the longest window)
        # are left out before the grouping.
        lookback = _plus_hours(_col("first_seen", "a"), -self.spec.lookback_hours)
        reach: list[exp.Expr] = [exp.GTE(this=_col("ts", "e"), expression=lookback)]
        upper = _reach_hours(self.spec.metrics)
        if upper is not None:
            reach.append(exp.LT(this=_col("ts", "e"), expression=_plus_hours(_col("first_seen", "a"), upper)))
        # Named explicitly: ClickHouse would name an unaliased `a.unit_id` by its text.
        reached = (exp.select(exp.alias_(_col("unit_id", "a"), "unit_id"), *values)
                   .from_(exp.alias_(exp.to_table("a"), "a"))
                   .join(exp.alias_(exp.to_table("e"), "e"),
                         on=exp.EQ(this=_col("unit_id", "e"), expression=_col("unit_id", "a"))))
        for cte, alias in self.funnel_joins:
            reached = reached.join(exp.alias_(exp.to_table(cte), alias),
                                   on=exp.EQ(this=_col("unit_id", alias), expression=_col("unit_id", "a")),
                                   join_type="left")
        reached = reached.where(_and(*reach)).group_by(_col("unit_id", "a"))
        zero = exp.cast(_num(0), exp.DataType.build("DOUBLE"))
        carried = [_col("unit_id", "a"), _col("variation", "a"), _col("first_seen", "a"),
                   *[_col(_slice_name(k), "a") for k in range(len(slices))]]
        units = (exp.select(*[exp.alias_(c.copy(), c.name) for c in carried],
                            *[exp.alias_(exp.Coalesce(this=_col(n, "v"), expressions=[zero.copy()]), n)
                              for names_ in self.value_names for n in names_])
                 .from_(exp.alias_(exp.to_table("a"), "a"))
                 .join(exp.alias_(exp.to_table("v"), "v"),
                       on=exp.EQ(this=_col("unit_id", "v"), expression=_col("unit_id", "a")), join_type="left"))
        return [_cte("src_x", self.exposures), _cte("src_e", self.events), _cte("x", exposed),
                _cte("ranked", ranked), _cte("a", assigned), _cte("e", events), *self.funnels, _cte("v", reached),
                _cte("u", units)]


def _reach_hours(metrics: Sequence[MetricSpec]) -> int | None:
    """Hours after the first exposure past which no metric reads an event (None: no bound)."""
    ends: list[int] = []
    for m in metrics:
        if m.kind == "retention":
            ends.append(24 * ((m.retention_day or 0) + 1))
        elif m.kind == "ltv":
            ends.append(24 * (m.ltv_day or 0))
        elif m.kind in ("conversion", "mean", "ratio", "count", "funnel") and m.window_hours is not None:
            ends.append(int(m.window_hours))
        else:
            return None
    return max(ends, default=0)


def _mature(m: MetricSpec, design: Design, dialect: str) -> exp.Expr | None:
    """The units a retention or LTV metric counts: exposed long enough before the analysis end."""
    after = m.mature_after()
    if after is None:
        return None
    return exp.LTE(this=_col("first_seen"), expression=_at(design.analysis_end - after, dialect))


def _with(ctes: Sequence[exp.CTE], query: exp.Select) -> exp.Select:
    query.set("with_", exp.With(expressions=[c.copy() for c in ctes]))
    return query


def _percentile(value: exp.Expr, q: float, dialect: str) -> exp.Expr:
    if dialect == "clickhouse":
        return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[_num(q)], params=[value])
    if dialect in ("spark", "spark2", "databricks", "hive"):
        return exp.Quantile(this=value, quantile=_num(q))
    if dialect in APPROXIMATE_PERCENTILES:
        raise CompileError(f"Percentile capping needs an exact percentile, which {dialect} does not have; "
                           "use absolute capping on this engine.")
    return exp.WithinGroup(this=exp.PercentileCont(this=_num(q)),
                           expression=exp.Order(expressions=[exp.Ordered(this=value)]))


def _caps_query(values: Sequence[tuple[exp.Expr, float]], dialect: str) -> exp.Select:
    """One row: per value, its exact percentile over the units (NULLs ignored), as c0, c1, ….

    BigQuery has exact percentiles only as an analytic function (`PERCENTILE_CONT(y, q)
    OVER ()`; its aggregate `APPROX_QUANTILES` is approximate): one window over all units,
    then one row. Redshift wants every sort-based aggregate of a statement to order by the
    same values: each percentile is a one-row subquery of its own, cross-joined."""
    if dialect == "bigquery":
        inner = exp.select(*[
            exp.alias_(exp.Window(this=exp.PercentileCont(this=value, expression=_num(q)), over="OVER"), f"c{i}")
            for i, (value, q) in enumerate(values)
        ]).from_("u")
        return exp.select(*[exp.alias_(exp.Max(this=_col(f"c{i}")), f"c{i}") for i in range(len(values))]).from_(
            inner.subquery("q"))
    if dialect == "redshift" and len(values) > 1:
        parts = [exp.select(exp.alias_(_percentile(value, q, dialect), f"c{i}")).from_("u").subquery(f"q{i}")
                 for i, (value, q) in enumerate(values)]
        query = exp.select(*[_col(f"c{i}", f"q{i}") for i in range(len(values))]).from_(parts[0])
        for part in parts[1:]:
            query = query.join(part, join_type="cross")
        return query
    return exp.select(*[exp.alias_(_percentile(value, q, dialect), f"c{i}")
                        for i, (value, q) in enumerate(values)]).from_("u")


def compile_readout(spec: ReadoutSpec, design: Design, *, dialect: str, exposure_query: str,
                    event_query: str) -> ReadoutStatements:
    """The readout's statements for an engine speaking `dialect` (a sqlglot dialect name)."""
    builder = _Builder(spec, design, dialect, exposure_query, event_query)
    ctes = builder.ctes()
    capped = [(m, names[0]) for m, names in zip(spec.metrics, builder.value_names, strict=True)
              if m.capping == "percentile" and m.capping_value is not None and m.kind in CAPPABLE_KINDS]
    # LTV: over the units the analysis counts (a younger unit's partial value is not its LTV).
    values = [(_case(_and(exp.NEQ(this=_col(y), expression=_num(0)),
                          *[c for c in [_mature(m, design, dialect)] if c is not None]), _col(y)),
               float(m.capping_value or 0))
              for m, y in capped]
    if dialect in ("duckdb", "postgres"):
        # Both materialize a CTE read more than once: the events (read by the values and by each
        # funnel step) are scanned again instead, with the name filter pushed into each scan,
        # while the per-unit values (read by the caps and the sums) are computed once.
        for cte in ctes:
            if cte.alias in ("src_e", "e"):
                cte.set("materialized", False)
            elif cte.alias == "u" and capped:
                cte.set("materialized", True)
    aggregate = _aggregate(spec, design, dialect, ctes, builder.value_names,
                           {m.key: f"c{i}" for i, (m, _) in enumerate(capped)}, values)
    multiple = _with(ctes[:4], exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_("ranked").where(
        _and(exp.EQ(this=_col("rn"), expression=_num(1)), exp.NEQ(this=_col("vmin"), expression=_col("vmax")))))
    return ReadoutStatements(
        spec=spec, design=design, dialect=dialect, exposure_query=exposure_query, event_query=event_query,
        aggregate=aggregate.sql(dialect=dialect), capped=tuple(m.key for m, _ in capped),
        multiple=multiple.sql(dialect=dialect),
    )


def _aggregate(spec: ReadoutSpec, design: Design, dialect: str, ctes: Sequence[exp.CTE],
               value_names: Sequence[Sequence[str]], cap_columns: dict[str, str],
               cap_values: Sequence[tuple[exp.Expr, float]]) -> exp.Select:
    """The sums per variation and combination of slice values, then the percentile caps.

    The caps are computed in the same statement, over the same per-unit values `u`: a one-row
    CTE `c` cross-joined to `u` (one computation of `u`: PostgreSQL and DuckDB materialize a CTE
    read twice), or on ClickHouse, which inlines every reference to a CTE, a window over all of
    `u`. A cap that is NULL (no unit had a non-zero value) caps nothing."""
    columns: list[exp.Expr] = [_col("variation"), *[_col(_slice_name(k))
                                                          for k in range(len(spec.slice_attributes))],
                                     exp.alias_(exp.Count(this=exp.Star()), "n")]
    for m, names in zip(spec.metrics, value_names, strict=True):
        it = iter(names)
        y_name = next(it)
        x_name = next(it) if spec.lookback_hours > 0 else None
        d_name = next(it) if m.kind == "ratio" else None
        dx_name = next(it) if m.kind == "ratio" and spec.lookback_hours > 0 else None
        absolute = m.capping_value if m.kind in CAPPABLE_KINDS and m.capping == "absolute" else None
        cap_column = cap_columns.get(m.key)

        def ref(name: str | None, capped: bool, absolute: float | None = absolute,
                cap_column: str | None = cap_column) -> exp.Expr | None:
            if name is None:
                return None
            if capped and cap_column is not None:
                return exp.Least(this=_col(name), expressions=[
                    exp.Coalesce(this=_col(cap_column), expressions=[_col(name)])])
            if capped and absolute is not None:
                return exp.Least(this=_col(name), expressions=[_num(float(absolute))])
            return _col(name)

        y, x, d, dx = ref(y_name, True), ref(x_name, True), ref(d_name, False), ref(dx_name, False)
        mature = _mature(m, design, dialect)

        def total(*factors: exp.Expr | None, mature: exp.Expr | None = mature) -> exp.Expr:
            if any(f is None for f in factors):
                return exp.null()
            product: exp.Expr = factors[0].copy()  # type: ignore[union-attr]
            for f in factors[1:]:
                product = exp.Mul(this=product, expression=f.copy())  # type: ignore[union-attr]
            return exp.Sum(this=_case(mature.copy(), product) if mature is not None else product)

        binary = m.kind in BINARY_KINDS
        users = exp.Count(this=_case(mature.copy(), _num(1))) if mature is not None else exp.Count(this=exp.Star())
        terms = [users, total(y), total(y) if binary else total(y, y), total(x), total(x) if binary else total(x, x),
                 total(x, y)]
        if m.kind == "ratio":
            terms += [total(d), total(d, d), total(y, d), total(dx), total(dx, dx), total(y, dx), total(x, d),
                      total(x, dx), total(d, dx)]
        start = len(columns)
        columns.extend(exp.alias_(t, f"t{start + i}") for i, t in enumerate(terms))
    # The caps last, one per capped metric (the same in every row); aliased apart from the columns.
    columns.extend(exp.alias_(exp.Max(this=_col(f"c{i}")), f"k{i}") for i in range(len(cap_values)))
    group = [_col("variation"), *[_col(_slice_name(k)) for k in range(len(spec.slice_attributes))]]
    query = exp.select(*columns)
    if not cap_values:
        return _with(ctes, query.from_("u").group_by(*group))
    if dialect == "clickhouse":
        windowed = exp.select(exp.Star(), *[
            exp.alias_(exp.Window(this=_percentile(value, q, dialect), over="OVER"), f"c{i}")
            for i, (value, q) in enumerate(cap_values)]).from_("u")
        return _with(ctes, query.from_(windowed.subquery("u")).group_by(*group))
    query = query.from_("u").join(exp.to_table("c"), join_type="cross").group_by(*group)
    return _with([*ctes, _cte("c", _caps_query(cap_values, dialect))], query)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def caps_from_row(statements: ReadoutStatements, row: Sequence[Any] | None) -> dict[str, float | None]:
    """The caps of a record of the aggregate (its last columns) as {metric key: cap}; None where
    no unit had a non-zero value, or where there is no record at all."""
    if row is None:
        return dict.fromkeys(statements.capped)
    values = list(row)[len(row) - len(statements.capped):] if statements.capped else []
    return {key: _float(value) for key, value in zip(statements.capped, values, strict=True)}


def aggregate_rows(spec: ReadoutSpec, records: Sequence[Sequence[Any]]) -> list[AggregateRow]:
    """The aggregate's records as the rows the built-in path returns, in the same order."""
    k = len(spec.slice_attributes)
    rows = []
    for record in records:
        variation = int(record[0])
        slices = tuple(None if v is None else str(v) for v in record[1:1 + k])
        units = int(record[1 + k])
        values = list(record[2 + k:])
        sums: list[tuple[float | None, ...]] = []
        start = 0
        for m in spec.metrics:
            width = len(metric_columns(m.kind))
            sums.append(tuple(_float(v) for v in values[start:start + width]))
            start += width
        rows.append(AggregateRow(variation=variation, slices=slices, units=units, sums=tuple(sums)))
    rows.sort(key=lambda r: (r.variation, [(v is None, v or "") for v in r.slices]))
    return rows
