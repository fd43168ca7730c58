"""Warehouse readouts, the pure part: the engines a data source can name, the checks of its
queries, and the metric catalog compiled to SQL for each engine (sqlglot expressions).

- `engines`: each engine's dialect, connection fields and secret rule (`connection_errors`).
- `queries`: `query_check`, one SELECT in the engine's dialect returning the required columns.
- `export`: `export_statements`, the SQL that appends served exposures to a table of the source.
- `compiler`: `compile_readout`, the statements of one readout (caps, aggregate, multiple
  exposures), and `aggregate_rows`, their records as the built-in path's `AggregateRow`s.

The drivers that run the statements are in `experiments.connectors`.
"""

from experiments.warehouse.compiler import (
    CompileError,
    Design,
    ReadoutStatements,
    aggregate_rows,
    caps_from_row,
    compile_readout,
)
from experiments.warehouse.engines import ENGINES, Engine, FieldSpec, connection_errors
from experiments.warehouse.export import (
    EXPORT_COLUMNS,
    EXPORT_ENGINES,
    ExportStatements,
    export_statements,
    export_table_errors,
)
from experiments.warehouse.queries import (
    EVENT_COLUMNS,
    EXPOSURE_COLUMNS,
    MAX_QUERY_LENGTH,
    QueryCheck,
    query_check,
    sample_statement,
)

__all__ = [
    "ENGINES",
    "EVENT_COLUMNS",
    "EXPORT_COLUMNS",
    "EXPORT_ENGINES",
    "EXPOSURE_COLUMNS",
    "MAX_QUERY_LENGTH",
    "CompileError",
    "Design",
    "Engine",
    "ExportStatements",
    "FieldSpec",
    "QueryCheck",
    "ReadoutStatements",
    "aggregate_rows",
    "caps_from_row",
    "compile_readout",
    "connection_errors",
    "export_statements",
    "export_table_errors",
    "query_check",
    "sample_statement",
]
