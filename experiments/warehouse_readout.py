"""A readout's sums from an experiment's data source: the statements compiled for its engine
(`experiments.warehouse`), run through its driver (`experiments.connectors`) with the source's
timeout, and returned in the built-in path's shape, so that `experiments.mappers` and the
readout contract take them unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from experiments import connectors
from experiments.models import DataSource, Experiment, Phase
from experiments.readout_spec import AggregateRow, ReadoutSpec
from experiments.warehouse import ENGINES, CompileError, Design, aggregate_rows, caps_from_row, compile_readout

__all__ = ["DataSourceFailed", "WarehouseSums", "warehouse_sums"]


class DataSourceFailed(Exception):
    """The experiment's data source could not give the sums (unreachable, a failing or timed-out
    statement, a readout its engine cannot express); the message names the source and the cause,
    never the connection's settings. It fails this readout only."""

    error_code = "data_source_error"


@dataclass(frozen=True, slots=True)
class WarehouseSums:
    rows: list[AggregateRow]
    caps: dict[str, float | None]
    multiple_exposure_units: int
    engine_version: str


def warehouse_sums(*, source: DataSource, experiment: Experiment, phase: Phase, spec: ReadoutSpec,
                   variations: Sequence[str], analysis_end: datetime) -> WarehouseSums:
    """Run the readout's statements in the data source: the sums and the percentile caps (one
    statement), then the count of units seen in more than one variation."""
    try:
        return _sums(source=source, experiment=experiment, phase=phase, spec=spec, variations=variations,
                     analysis_end=analysis_end)
    except (connectors.ConnectorError, CompileError) as exc:
        raise DataSourceFailed(f"The data source '{source.key}' ({source.engine}) could not be read: {exc}") \
            from exc


def _sums(*, source: DataSource, experiment: Experiment, phase: Phase, spec: ReadoutSpec,
          variations: Sequence[str], analysis_end: datetime) -> WarehouseSums:
    engine = ENGINES.get(source.engine)
    if engine is None:
        raise connectors.ConnectorError(f"No connector for engine '{source.engine}'.")
    design = Design(experiment=experiment.key, variations=tuple(variations), phase_start=phase.started_at,
                    phase_end=phase.ended_at, analysis_end=analysis_end)
    statements = compile_readout(spec, design, dialect=engine.dialect, exposure_query=source.exposure_query,
                                 event_query=source.event_query)
    timeout = float(source.timeout_seconds)
    conn = connectors.connect(source.engine, source.connection, timeout=timeout)
    try:
        version = conn.version()
        sums = connectors.statement_run(conn, statements.aggregate, timeout=timeout, source=source.key,
                                        purpose="readout aggregate")
        multiple = connectors.statement_run(conn, statements.multiple, timeout=timeout, source=source.key,
                                            purpose="readout multiple exposures")
    finally:
        conn.close()
    caps = caps_from_row(statements, sums.rows[0] if sums.rows else None)
    count = int(multiple.rows[0][0]) if multiple.rows and multiple.rows[0][0] is not None else 0
    return WarehouseSums(rows=aggregate_rows(spec, sums.rows), caps=caps, multiple_exposure_units=count,
                         engine_version=version)
