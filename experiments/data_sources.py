"""Data sources: where an experiment's exposures and events are read when they live in a
warehouse. Every write is checked first (`checks.check_data_source`), runs in one transaction
and is audited; `data_source_test` connects and runs each query with a row limit.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from audit.types import Actor
from base.checks import raise_if
from base.keys import check_key
from base.writes import audited, reject_unknown
from config.errors import Conflict
from experiments import connectors
from experiments.checks import check_data_source
from experiments.documents import data_source_document
from experiments.models import DataSource
from experiments.warehouse import ENGINES, EVENT_COLUMNS, EXPOSURE_COLUMNS, query_check, sample_statement

__all__ = ["DATA_SOURCE_FIELDS", "SAMPLE_ROWS", "QueryReport", "SourceReport", "data_source_create",
           "data_source_delete", "data_source_test", "data_source_update"]

DATA_SOURCE_FIELDS = ("name", "description", "engine", "connection", "exposure_query", "event_query",
                      "timeout_seconds", "exposure_export_table")
# Rows a test reads of each query.
SAMPLE_ROWS = 100


def _audit(actor: Actor, action: str, source: DataSource | None, key: str, *, deleting: bool = False) -> Any:
    return audited(actor=actor, action=action, object_type="data_source", object_key=key,
                   document=lambda: data_source_document(source) if source is not None and source.pk else None,
                   deleting=deleting)


@transaction.atomic
def data_source_create(*, actor: Actor, key: str, **data: Any) -> DataSource:
    """Add a data source; nothing connects to it until a test or a readout."""
    reject_unknown(data, DATA_SOURCE_FIELDS, what="data source")
    errors = check_key(key)
    check_data_source(data, errors)
    raise_if(errors, "The data source is not valid.")
    if DataSource.objects.filter(key=key).exists():
        raise Conflict(f"Data source '{key}' already exists.", code="duplicate_key")
    source = DataSource(key=key, **data)
    with _audit(actor, "data_source.create", source, key):
        try:
            source.save()
        except IntegrityError as exc:
            raise Conflict(f"Data source '{key}' already exists.", code="duplicate_key") from exc
    return source


@transaction.atomic
def data_source_update(*, actor: Actor, source: DataSource, **changes: Any) -> DataSource:
    """Change a data source; experiments reading from it use the change at their next readout."""
    reject_unknown(changes, DATA_SOURCE_FIELDS, what="data source")
    source = DataSource.objects.select_for_update().get(pk=source.pk)
    merged = {f: getattr(source, f) for f in DATA_SOURCE_FIELDS}
    merged.update(changes)
    errors: dict[str, list[str]] = {}
    check_data_source(merged, errors)
    raise_if(errors, "The data source is not valid.")
    with _audit(actor, "data_source.update", source, source.key):
        for field, value in changes.items():
            setattr(source, field, value)
        source.save()
    return source


@transaction.atomic
def data_source_delete(*, actor: Actor, source: DataSource) -> None:
    """Remove a data source no experiment reads from."""
    source = DataSource.objects.select_for_update().get(pk=source.pk)
    users = list(source.experiments.values_list("key", flat=True)[:10])
    if users:
        raise Conflict(f"Data source '{source.key}' is used by experiments: {', '.join(users)}.",
                       code="data_source_in_use", details={"experiments": users})
    with _audit(actor, "data_source.delete", source, source.key, deleting=True):
        source.delete()


# Testing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryReport:
    query: str  # "exposure_query" or "event_query"
    columns: tuple[str, ...]
    rows: int  # rows read, at most `limit`
    limit: int
    seconds: float
    problems: tuple[str, ...]  # columns of unusable types, or the statement's error


@dataclass(frozen=True, slots=True)
class SourceReport:
    ok: bool
    engine: str
    engine_version: str | None
    error: str | None
    queries: tuple[QueryReport, ...]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, decimal.Decimal)):
        return "number"
    if isinstance(value, dt.datetime) or type(value).__name__ == "Timestamp":
        return "timestamp"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


# The kinds of value a required column may hold.
USABLE = {
    "unit_id": {"text", "number"},
    "timestamp": {"timestamp"},
    "experiment": {"text"},
    "variation": {"text"},
    "name": {"text"},
    "value": {"number"},
}


def _type_problems(columns: tuple[str, ...], rows: list[tuple[Any, ...]], required: tuple[str, ...]) -> list[str]:
    problems = []
    lowered = [c.lower() for c in columns]
    for name in required:
        if name not in lowered:
            problems.append(f"The result has no column '{name}'.")
            continue
        index = lowered.index(name)
        kinds = {_kind(row[index]) for row in rows if row[index] is not None}
        bad = kinds - USABLE[name]
        if bad:
            problems.append(f"Column '{name}' holds {', '.join(sorted(bad))} values; it needs "
                            f"{' or '.join(sorted(USABLE[name]))}.")
    return problems


def data_source_test(*, source: DataSource, limit: int = SAMPLE_ROWS) -> SourceReport:
    """Connect, then run each query with a row limit: its columns, rows read and problems, and
    the engine's version; a failure is reported, never raised."""
    engine = ENGINES[source.engine]
    timeout = float(source.timeout_seconds)
    try:
        conn = connectors.connect(source.engine, source.connection, timeout=timeout)
    except connectors.ConnectorError as exc:
        return SourceReport(ok=False, engine=source.engine, engine_version=None, error=str(exc), queries=())
    reports = []
    try:
        version = conn.version()
        for field, required in (("exposure_query", EXPOSURE_COLUMNS), ("event_query", EVENT_COLUMNS)):
            check = query_check(getattr(source, field), engine.dialect, required)
            if check.errors:
                reports.append(QueryReport(field, (), 0, limit, 0.0, check.errors))
                continue
            statement = sample_statement(getattr(source, field), engine.dialect, limit)
            try:
                result = connectors.statement_run(conn, statement, timeout=timeout, source=source.key,
                                                  purpose=f"test {field}")
            except connectors.ConnectorError as exc:
                reports.append(QueryReport(field, (), 0, limit, 0.0, (str(exc),)))
                continue
            reports.append(QueryReport(field, tuple(c.lower() for c in result.columns), len(result.rows), limit,
                                       round(result.seconds, 3),
                                       tuple(_type_problems(result.columns, result.rows, required))))
    except connectors.ConnectorError as exc:
        return SourceReport(ok=False, engine=source.engine, engine_version=None, error=str(exc),
                            queries=tuple(reports))
    finally:
        conn.close()
    ok = all(not r.problems for r in reports)
    return SourceReport(ok=ok, engine=source.engine, engine_version=version, error=None, queries=tuple(reports))
