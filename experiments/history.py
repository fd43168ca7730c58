"""Loading history: metric events from a CSV or Parquet file into the events table.

Each row becomes an event item of `POST /api/v1/events` and goes through the same validation
and de-duplication (`experiments.ingestion.events_ingest`), in batches, except that a
timestamp may be up to `MAX_HISTORY` old (the API takes 90 days). Rows name their columns:

- `id` (required): the event's id, unique per environment; a row whose id was stored before
  is a duplicate and changes nothing, so a file loaded twice adds nothing the second time;
- `unit_id`, `timestamp`, `name` (required), `value` (optional, 1 when empty), `properties`
  (optional, a JSON object).

A CSV file has a header line; its timestamps are ISO 8601 (UTC without an offset) or epoch
milliseconds (digits), its values decimal numbers. A Parquet file's columns may be typed:
timestamps (UTC when they have no zone), numbers, strings. A rejected row is reported with its
position: the CSV line where it starts (the header is line 1), or the Parquet row (from 1).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from base.models import Environment
from experiments.ingestion import MAX_BATCH_ITEMS, MAX_HISTORY, events_ingest

__all__ = ["COLUMNS", "FORMATS", "HistoryError", "HistoryReport", "RejectedRow", "history_import", "report_lines"]

FORMATS = ("csv", "parquet")
COLUMNS = ("id", "unit_id", "timestamp", "name", "value", "properties")
REQUIRED = ("id", "unit_id", "timestamp", "name")
_DIGITS = re.compile(r"-?\d+")


class HistoryError(ValueError):
    """The file cannot be read at all (not one of its rows): missing, unknown format, no header."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    position: int  # CSV line or Parquet row
    code: str
    message: str


@dataclass(slots=True)
class HistoryReport:
    format: str
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicates + len(self.rejected)


def file_format(path: Path, given: str | None) -> str:
    """The format named, or the one the file's extension says."""
    if given:
        if given not in FORMATS:
            raise HistoryError(f"Unknown format '{given}': use one of {', '.join(FORMATS)}.")
        return given
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("csv", "parquet"):
        return suffix
    if suffix == "pq":
        return "parquet"
    raise HistoryError(f"Cannot tell the format of '{path.name}' from its extension: give --format csv or parquet.")


def _check_header(names: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise HistoryError(f"The file has no column {', '.join(missing)} (columns: {', '.join(COLUMNS)}).")


def _csv_value(raw: str) -> Any:
    if raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        return raw  # refused by the validation, with the reason


def _csv_properties(raw: str) -> Any:
    if raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # not a JSON object: refused by the validation


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise HistoryError("The CSV file is empty: it needs a header line.") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise HistoryError(f"The CSV file cannot be read: {exc}") from exc
        names = [h.strip() for h in header]
        _check_header(names)
        line = reader.line_num
        while True:
            start = line + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise HistoryError(f"line {start}: the CSV cannot be read further: {exc}") from exc
            except UnicodeDecodeError as exc:
                raise HistoryError(f"near line {start}: the file is not UTF-8 text: {exc}") from exc
            line = reader.line_num
            if not record:
                continue  # a blank line
            # An empty cell is a missing field (`missing_field` for a required one).
            row: dict[str, Any] = {k: (v if v != "" else None) for k, v in zip(names, record, strict=False)}
            ts = row.get("timestamp")
            if isinstance(ts, str) and _DIGITS.fullmatch(ts.strip()):
                row["timestamp"] = int(ts.strip())
            if row.get("value") is not None:
                row["value"] = _csv_value(str(row["value"]).strip())
            if row.get("properties") is not None:
                row["properties"] = _csv_properties(str(row["properties"]))
            if len(record) != len(names):
                row["__error__"] = f"the line has {len(record)} fields, the header {len(names)}"
            yield start, row


def _parquet_rows(path: Path, batch_size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise HistoryError("Reading Parquet needs pyarrow: pip install 'splitbase[parquet]'.") from exc
    try:
        source = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for a file that is not Parquet
        raise HistoryError(f"The Parquet file cannot be read: {exc}") from exc
    _check_header(list(source.schema_arrow.names))
    position = 0
    for batch in source.iter_batches(batch_size=batch_size, columns=[c for c in COLUMNS
                                                                       if c in source.schema_arrow.names]):
        for row in batch.to_pylist():
            position += 1
            ts = row.get("timestamp")
            if isinstance(ts, datetime):
                row["timestamp"] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()
            if isinstance(row.get("properties"), str):
                row["properties"] = _csv_properties(row["properties"])
            yield position, row


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", **{c: row[c] for c in COLUMNS if row.get(c) is not None}}


def history_import(
    path: Path, *, environment: Environment, file_format_name: str | None = None,
    batch_size: int = MAX_BATCH_ITEMS, max_past: timedelta = MAX_HISTORY,
    progress: Callable[[HistoryReport], None] | None = None,
) -> HistoryReport:
    """Load the file's events into `environment`, `batch_size` rows per transaction."""
    if not path.is_file():
        raise HistoryError(f"No file at {path}.")
    if not 0 < batch_size <= 10 * MAX_BATCH_ITEMS:
        raise HistoryError(f"The batch size is 1 to {10 * MAX_BATCH_ITEMS} rows.")
    fmt = file_format(path, file_format_name)
    rows = _csv_rows(path) if fmt == "csv" else _parquet_rows(path, batch_size)
    report = HistoryReport(format=fmt)
    batch: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        if not batch:
            return
        result = events_ingest(environment=environment, items=[_item(r) for _, r in batch], max_past=max_past)
        report.accepted += result.accepted
        report.duplicates += result.duplicates
        report.rejected.extend(RejectedRow(batch[r.index][0], r.code, r.message) for r in result.rejected)
        batch.clear()
        if progress is not None:
            progress(report)

    for position, row in rows:
        error = row.pop("__error__", None)
        if error is not None:
            report.rejected.append(RejectedRow(position, "invalid_row", error))
            continue
        batch.append((position, row))
        if len(batch) >= batch_size:
            flush()
    flush()
    report.rejected.sort(key=lambda r: r.position)
    return report


def report_lines(report: HistoryReport) -> Iterator[str]:
    """The report as the command prints it: one line per rejected row, then the counts."""
    unit = "line" if report.format == "csv" else "row"
    for r in report.rejected:
        yield f"{unit} {r.position}: {r.code}: {r.message}"
    yield (f"{report.rows} rows: {report.accepted} accepted, {report.duplicates} duplicate, "
           f"{len(report.rejected)} rejected")
