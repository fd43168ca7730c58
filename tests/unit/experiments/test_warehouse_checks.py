"""Data source checks without a database: queries parsed in the engine's dialect, connections
without secrets."""

from __future__ import annotations

import pytest

from experiments.warehouse import (
    ENGINES,
    EVENT_COLUMNS,
    EXPOSURE_COLUMNS,
    connection_errors,
    query_check,
    sample_statement,
)

EXPOSURES = "SELECT user_id AS unit_id, ts AS timestamp, experiment, arm AS variation, country FROM exposures"


def test_query_check__select_with_the_columns__accepted_with_its_columns() -> None:
    check = query_check(EXPOSURES, "duckdb", EXPOSURE_COLUMNS)
    assert check.errors == ()
    assert check.columns == ("unit_id", "timestamp", "experiment", "variation", "country")


@pytest.mark.parametrize("text, message", [
    ("DROP TABLE events", "Only a SELECT"),
    ("DELETE FROM events WHERE true", "Only a SELECT"),
    ("INSERT INTO t SELECT 1", "Only a SELECT"),
    ("CREATE TABLE t AS SELECT 1 AS unit_id", "Only a SELECT"),
    ("UPDATE events SET value = 0", "Only a SELECT"),
    ("SELECT 1 AS unit_id; DROP TABLE events", "exactly one statement"),
    ("SELECT * FROM events", "no *"),
    ("SELECT user_id AS unit_id FROM events", "missing: timestamp, name, value"),
    ("SELEC unit_id FROM", "does not parse"),
    ("", "Give the query"),
    ("x" * 20_001, "longer than"),
])
def test_query_check__not_one_select_with_the_columns__refused(text: str, message: str) -> None:
    check = query_check(text, "duckdb", EVENT_COLUMNS)
    assert any(message in e for e in check.errors), check.errors


def test_query_check__write_hidden_in_a_comment_or_string__parsed_not_grepped() -> None:
    text = "SELECT u AS unit_id, t AS timestamp, 'DROP TABLE x' AS name, 1 AS value FROM e -- DELETE FROM e"
    assert query_check(text, "duckdb", EVENT_COLUMNS).errors == ()


def test_query_check__dialect__parsed_in_the_engines_own() -> None:
    clickhouse = ("SELECT toString(uid) AS unit_id, ts AS timestamp, event AS name, toFloat64(v) AS value "
                  "FROM events FINAL")
    assert query_check(clickhouse, "clickhouse", EVENT_COLUMNS).errors == ()
    spark = "SELECT uid AS unit_id, ts AS timestamp, n AS name, v AS value FROM parquet.`/data/events.parquet`"
    assert query_check(spark, "spark", EVENT_COLUMNS).errors == ()


def test_sample_statement__limit__wraps_the_query() -> None:
    assert sample_statement(EXPOSURES, "duckdb", 100).endswith("LIMIT 100")


def test_connection__secret_value__refused_with_the_env_form() -> None:
    errors = connection_errors(ENGINES["postgres"], {"host": "db", "dbname": "dw", "password": "hunter2"})
    assert any("password_env" in e and "never stored" in e for e in errors)
    assert not any("hunter2" in e for e in errors)


def test_connection__env_name__must_be_a_variable_name() -> None:
    assert connection_errors(ENGINES["postgres"], {"host": "db", "dbname": "dw", "password_env": "WH_PASSWORD"}) == []
    errors = connection_errors(ENGINES["postgres"], {"host": "db", "dbname": "dw", "password_env": "hunter2 !"})
    assert errors and "environment variable" in errors[0]


def test_connection__required_and_unknown_fields__named() -> None:
    errors = connection_errors(ENGINES["duckdb"], {"file": "/x"})
    assert any("Unknown field 'file'" in e for e in errors)
    assert any("'path' is required" in e for e in errors)
    assert connection_errors(ENGINES["duckdb"], []) == ["Give the connection as a JSON object."]


def test_connection__duckdb_memory_limit_and_threads__checked() -> None:
    assert connection_errors(ENGINES["duckdb"], {"path": "/x", "memory_limit": "1.5GB", "threads": 2}) == []
    assert connection_errors(ENGINES["duckdb"], {"path": "/x", "memory_limit": "512 MiB"}) == []
    for bad in ("lots", "1.5", "2GB; SET x = 1", 2):
        errors = connection_errors(ENGINES["duckdb"], {"path": "/x", "memory_limit": bad})
        assert errors and "size such as 512MB" in errors[0], bad
    for bad_threads in (0, 257, "2", True):
        errors = connection_errors(ENGINES["duckdb"], {"path": "/x", "threads": bad_threads})
        assert errors and "1 to 256" in errors[0], bad_threads
