"""Served exposures appended to a table of the data source: the statements, per dialect.

The table holds one row per exposure the service recorded for the source's experiments:

| column | type | what |
|---|---|---|
| `exposure_id` | text | `<environment key>:<the exposure's id>`, unique: a row is never written twice |
| `unit_id` | text | the unit the experiment's hash attribute named |
| `timestamp` | timestamp (UTC) | when it was served |
| `experiment` | text | the experiment's key |
| `variation` | text | the variation's key |
| `attributes` | text | the attributes sent with it, as a JSON object (slice attributes) |
| `exported_at` | timestamp (UTC) | when this row was appended |

Each batch is loaded into a temporary staging table and appended with an anti-join on
`exposure_id`, so that a batch sent twice (a retry, an overlap of the schedule's windows) adds
nothing the second time. The table is never updated or deleted from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

__all__ = ["EXPORT_COLUMNS", "EXPORT_ENGINES", "ExportStatements", "export_statements", "export_table_errors"]

EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("exposure_id", "TEXT"),
    ("unit_id", "TEXT"),
    ("timestamp", "TIMESTAMP"),
    ("experiment", "TEXT"),
    ("variation", "TEXT"),
    ("attributes", "TEXT"),
    ("exported_at", "TIMESTAMP"),
)
# The engines whose connectors write (the others only read).
EXPORT_ENGINES = {"duckdb": "duckdb", "postgres": "postgres"}
_PART = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
TABLE_NAME = re.compile(rf"^{_PART}(\.{_PART}){{0,2}}$")
STAGING = "splitbase_exposures_staging"


def export_table_errors(table: object, engine: str) -> list[str]:
    if not isinstance(table, str) or not TABLE_NAME.match(table):
        return ["Name the table as table or schema.table (letters, digits and _, each part at most 63)."]
    if engine not in EXPORT_ENGINES:
        return [f"Exposures are exported to {' and '.join(EXPORT_ENGINES)} data sources only."]
    return []


@dataclass(frozen=True, slots=True)
class ExportStatements:
    create: str  # the table, when missing
    staging: str  # the temporary staging table
    append: str  # staging rows whose exposure_id the table lacks, appended
    clear: str  # the staging table emptied for the next batch
    columns: tuple[str, ...]


def _table(name: str) -> exp.Table:
    parts = name.split(".")
    return exp.Table(this=exp.to_identifier(parts[-1], quoted=True),
                     db=exp.to_identifier(parts[-2], quoted=True) if len(parts) > 1 else None,
                     catalog=exp.to_identifier(parts[-3], quoted=True) if len(parts) > 2 else None)


def _schema(table: exp.Table) -> exp.Schema:
    return exp.Schema(this=table, expressions=[
        exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=exp.DataType.build(kind))
        for name, kind in EXPORT_COLUMNS])


def export_statements(table: str, dialect: str) -> ExportStatements:
    """The statements that append a staged batch to `table` (checked by `export_table_errors`)."""
    target = _table(table)
    staging = exp.Table(this=exp.to_identifier(STAGING, quoted=True))
    names = [name for name, _ in EXPORT_COLUMNS]
    create = exp.Create(this=_schema(target), kind="TABLE", exists=True)
    temporary = exp.Create(this=_schema(staging.copy()), kind="TABLE", exists=True,
                           properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
    same_id = exp.EQ(this=exp.column("exposure_id", "t", quoted=True),
                     expression=exp.column("exposure_id", "s", quoted=True))
    missing = exp.Not(this=exp.Exists(
        this=exp.select(exp.Literal.number(1)).from_(target.copy().as_("t")).where(same_id)))
    select = exp.select(*[exp.column(n, "s", quoted=True) for n in names]).from_(staging.copy().as_("s")).where(missing)
    append = exp.Insert(this=exp.Schema(this=target.copy(), expressions=[exp.to_identifier(n, quoted=True)
                                                                          for n in names]), expression=select)
    clear = exp.Delete(this=staging.copy())
    return ExportStatements(create=create.sql(dialect=dialect), staging=temporary.sql(dialect=dialect),
                            append=append.sql(dialect=dialect), clear=clear.sql(dialect=dialect),
                            columns=tuple(names))
