"""Spark SQL (and Databricks, which runs it): the whole metric catalog's readout renders in the
dialect, parses back, and takes its percentile caps from the exact `percentile`, never from
the approximate `percentile_approx` the dialect library writes for a percentile."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from experiments.warehouse import compile_readout
from tests.unit.experiments.test_warehouse_golden import DESIGN, EVENTS, EXPOSURES, _spec


@pytest.mark.parametrize("dialect", ["spark", "databricks"])
def test_spark_readout__whole_catalog__parses_with_exact_percentiles_only(dialect: str) -> None:
    statements = compile_readout(_spec("spark"), DESIGN, dialect=dialect, exposure_query=EXPOSURES,
                                 event_query=EVENTS)
    assert statements.capped
    for sql in (statements.aggregate, statements.multiple):
        parsed = sqlglot.parse_one(sql, read=dialect)
        assert not list(parsed.find_all(exp.ApproxQuantile))
        assert "APPROX" not in sql.upper()
    percentiles = list(sqlglot.parse_one(statements.aggregate, read=dialect).find_all(exp.Quantile))
    assert len(percentiles) == len(statements.capped)
    assert statements.aggregate.count("PERCENTILE(") == len(statements.capped)


def test_plain_sqlglot__percentile_cont__would_be_approximate_on_spark() -> None:
    """Why the override exists: sqlglot's own translation of an exact percentile to Spark."""
    rendered = sqlglot.transpile("SELECT PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY y) FROM u",
                                 read="postgres", write="spark")[0]
    assert rendered == "SELECT PERCENTILE_APPROX(y, 0.9) FROM u"
