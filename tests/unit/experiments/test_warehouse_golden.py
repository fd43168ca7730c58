"""Engines that cannot run here (BigQuery, Trino, Redshift) and Snowflake, whose emulator runs
its SQL on DuckDB (tests/integration/experiments/warehouses): the readout's statements for the
whole metric catalog, rendered in the engine's dialect, parse there, render back unchanged and
equal a reviewed file under `golden_sql/<engine>/`; and the same statements, translated to
DuckDB by the dialect library, give DuckDB's own readout's sums on the same data (a stand-in
for the engine's semantics). Percentile caps: exact on BigQuery (its analytic
`PERCENTILE_CONT`), Redshift (one subquery per percentile) and Snowflake (`PERCENTILE_CONT …
WITHIN GROUP`, never `APPROX_PERCENTILE`), refused on Trino.

`SPLITBASE_GOLDEN_UPDATE=1` rewrites the files; review their diff before committing it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import sqlglot

from experiments.readout_spec import AggregateRow, MetricSpec, ReadoutSpec
from experiments.warehouse import (
    CompileError,
    Design,
    ReadoutStatements,
    aggregate_rows,
    caps_from_row,
    compile_readout,
)

GOLDEN = Path(__file__).parent / "golden_sql"
UPDATE = os.environ.get("SPLITBASE_GOLDEN_UPDATE") == "1"
ENGINES = ("bigquery", "trino", "redshift", "snowflake")

CATALOG = (
    MetricSpec("purchase", "conversion", event="purchase", window_hours=72),
    MetricSpec("revenue", "mean", event="purchase", capping="percentile", capping_value=0.95),
    MetricSpec("ctr", "ratio", event="click", denominator="impression", window_hours=336),
    MetricSpec("retention-d7", "retention", event="page_view", retention_day=7),
    MetricSpec("checkout-funnel", "funnel", steps=("view_item", "add_to_cart", "checkout"), window_hours=72),
    MetricSpec("clicks", "count", event="click", capping="absolute", capping_value=5, window_hours=336),
    MetricSpec("orders", "count", event="purchase", capping="percentile", capping_value=0.9, window_hours=336),
    MetricSpec("ltv-d7", "ltv", event="purchase", capping="percentile", capping_value=0.95, ltv_day=7),
)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DESIGN = Design(experiment="checkout-test", variations=("control", "treatment"),
                phase_start=NOW - timedelta(days=20), phase_end=None, analysis_end=NOW)
EXPOSURES = ("SELECT user_id AS unit_id, exposed_at AS timestamp, experiment_key AS experiment, arm AS variation, "
             "country, platform FROM exposures")
EVENTS = "SELECT user_id AS unit_id, event_time AS timestamp, event AS name, amount AS value FROM events"


def _spec(engine: str) -> ReadoutSpec:
    metrics: tuple[MetricSpec, ...] = CATALOG
    if engine == "trino":  # no exact percentile there: absolute caps only
        metrics = tuple(dataclasses.replace(m, capping="none", capping_value=None)
                        if m.capping == "percentile" else m for m in CATALOG)
    return ReadoutSpec(phase_id=0, metrics=metrics, lookback_hours=14 * 24, slice_attributes=("country", "platform"))


def _compiled(engine: str) -> ReadoutStatements:
    return compile_readout(_spec(engine), DESIGN, dialect=engine, exposure_query=EXPOSURES, event_query=EVENTS)


def _statements(engine: str) -> dict[str, str]:
    compiled = _compiled(engine)
    return {"aggregate": compiled.aggregate, "multiple": compiled.multiple}


@pytest.mark.parametrize("engine", ENGINES)
def test_golden__rendered_sql__parses_in_its_dialect_and_equals_the_reviewed_file(engine: str) -> None:
    statements = _statements(engine)
    # The percentile caps are computed inside the aggregate (no separate pass over the units).
    assert ("PERCENTILE_CONT" in statements["aggregate"]) == (engine != "trino")
    for name, sql in statements.items():
        parsed = sqlglot.parse_one(sql, read=engine)
        assert isinstance(parsed, sqlglot.exp.Select), name
        assert parsed.sql(dialect=engine) == sql, f"{engine} {name}: does not render back unchanged"
        pretty = parsed.sql(dialect=engine, pretty=True) + "\n"
        path = GOLDEN / engine / f"{name}.sql"
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(pretty)
        assert path.read_text() == pretty, f"{engine} {name} differs from {path}"


def test_golden__percentile_caps_on_trino__refused_with_the_reason() -> None:
    spec = ReadoutSpec(phase_id=0, metrics=CATALOG, lookback_hours=0)
    with pytest.raises(CompileError, match="exact percentile"):
        compile_readout(spec, DESIGN, dialect="trino", exposure_query=EXPOSURES, event_query=EVENTS)


def test_golden__bigquery_and_redshift_caps__exact_percentile_forms() -> None:
    bigquery = _compiled("bigquery").aggregate
    assert "PERCENTILE_CONT(CASE WHEN y2 <> 0 THEN y2 END, 0.95) OVER ()" in bigquery
    assert "APPROX" not in bigquery.upper()
    redshift = _compiled("redshift").aggregate
    # One sort-based aggregate per SELECT: Redshift refuses two with different orders.
    assert redshift.count("PERCENTILE_CONT") == 3 and "CROSS JOIN" in redshift


def test_golden__snowflake__exact_percentiles_and_timestamps_brought_to_utc() -> None:
    snowflake = _compiled("snowflake").aggregate
    assert "PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY CASE WHEN y2 <> 0 THEN y2 END)" in snowflake
    assert "APPROX" not in snowflake.upper() and "MEDIAN" not in snowflake.upper()
    # A TIMESTAMP_TZ cast to TIMESTAMP_NTZ keeps its own offset's wall clock: converted to UTC first,
    # and TIMESTAMP_NTZ named (TIMESTAMP means what the account's TIMESTAMP_TYPE_MAPPING says).
    assert "CAST(CONVERT_TIMEZONE('UTC', x_1) AS TIMESTAMPNTZ) AS ts" in snowflake
    assert "CAST(CONVERT_TIMEZONE('UTC', e_1) AS TIMESTAMPNTZ) AS ts" in snowflake
    assert "AS TIMESTAMP)" not in snowflake


# The DuckDB stand-in ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse() -> duckdb.DuckDBPyConnection:
    rng = random.Random(7)
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("CREATE TABLE exposures (user_id VARCHAR, exposed_at TIMESTAMP, experiment_key VARCHAR, "
                 "arm VARCHAR, country VARCHAR, platform VARCHAR)")
    conn.execute("CREATE TABLE events (user_id VARCHAR, event_time TIMESTAMP, event VARCHAR, amount DOUBLE)")
    exposures, events = [], []
    start = DESIGN.phase_start.replace(tzinfo=None)
    names = ("purchase", "click", "impression", "page_view", "view_item", "add_to_cart", "checkout")
    for i in range(400):
        first = start + timedelta(hours=rng.uniform(1, 19 * 24))
        arm = rng.choice(DESIGN.variations)
        row = (f"u{i}", first, "checkout-test", arm, rng.choice(["US", "DE", None]), rng.choice(["ios", "web"]))
        exposures.append(row)
        if rng.random() < 0.1:  # seen again, sometimes in the other arm
            other = arm if rng.random() < 0.5 else rng.choice(DESIGN.variations)
            exposures.append((row[0], first + timedelta(hours=5), "checkout-test", other, row[4], row[5]))
        for _ in range(rng.randint(0, 12)):
            at = first + timedelta(hours=rng.uniform(-15 * 24, 15 * 24))
            events.append((row[0], at, rng.choice(names), round(rng.lognormvariate(2, 1), 2)))
    conn.executemany("INSERT INTO exposures VALUES (?, ?, ?, ?, ?, ?)", exposures)
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", events)
    return conn


def _run(conn: duckdb.DuckDBPyConnection, sql: str, engine: str) -> list[tuple[object, ...]]:
    translated = sql if engine == "duckdb" else sqlglot.transpile(sql, read=engine, write="duckdb")[0]
    return conn.execute(translated).fetchall()


Readout = tuple[dict[str, float | None], list[AggregateRow], int]


def _readout(conn: duckdb.DuckDBPyConnection, engine: str, spec: ReadoutSpec) -> Readout:
    compiled = compile_readout(spec, DESIGN, dialect=engine, exposure_query=EXPOSURES, event_query=EVENTS)
    records = _run(conn, compiled.aggregate, engine)
    caps = caps_from_row(compiled, records[0] if records else None)
    rows = aggregate_rows(spec, records)
    multiple = int(_run(conn, compiled.multiple, engine)[0][0])  # type: ignore[call-overload]
    return caps, rows, multiple


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if hasattr(a, "__slots__") and type(a) is type(b):
        return all(_close(getattr(a, f), getattr(b, f)) for f in a.__slots__)
    return a == b


@pytest.mark.parametrize("engine", ENGINES)
def test_stand_in__engine_sql_run_on_duckdb__equals_duckdb_readout(
    engine: str, warehouse: duckdb.DuckDBPyConnection,
) -> None:
    spec = _spec(engine)
    expected = _readout(warehouse, "duckdb", spec)
    found = _readout(warehouse, engine, spec)
    caps, rows, multiple = expected
    assert multiple > 0 and len(rows) > 4
    if engine != "trino":
        assert caps["revenue"] is not None and caps["orders"] is not None and caps["ltv-d7"] is not None
    assert _close(found, expected), f"{engine}: {found} != {expected}"
