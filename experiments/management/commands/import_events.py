"""`python manage.py import_events PATH [--format csv|parquet] [--environment KEY]`: load history.

Reads metric events from a CSV or Parquet file (`experiments.history` describes the columns)
into the events table, with the validation and de-duplication of `POST /api/v1/events`, but
taking timestamps up to 455 days old (the longest metric window, 365 days, plus the longest
CUPED lookback, 90 days; the API takes 90). Rows go in batches of `--batch-size` (1,000), each
in one transaction. Loading the same file again adds nothing: every row is then a duplicate.

Prints each rejected row (`line 12: invalid_value: ...`; Parquet: `row 12: ...`) and the
counts. Exit status: 0 when no row was rejected, 1 when some were (the others are stored), 2
when the file cannot be read at all (nothing is stored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from base.models import Environment
from experiments.history import FORMATS, HistoryError, HistoryReport, history_import, report_lines
from experiments.ingestion import MAX_BATCH_ITEMS


class Command(BaseCommand):
    help = "Load metric events (history up to 455 days old) from a CSV or Parquet file into the events table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The CSV or Parquet file.")
        parser.add_argument("--format", choices=FORMATS, help="csv or parquet (default: from the file's extension).")
        parser.add_argument("--environment", help="The environment's key (default: the only environment).")
        parser.add_argument("--batch-size", type=int, default=MAX_BATCH_ITEMS,
                            help=f"Rows per transaction (1 to {10 * MAX_BATCH_ITEMS}, default {MAX_BATCH_ITEMS}).")

    def handle(self, *args: Any, **options: Any) -> None:
        environment = self._environment(options.get("environment"))

        def progress(report: HistoryReport) -> None:
            if options["verbosity"] > 1:
                self.stderr.write(f"{report.rows} rows read")

        try:
            report = history_import(Path(options["path"]), environment=environment,
                                    file_format_name=options.get("format"), batch_size=options["batch_size"],
                                    progress=progress)
        except HistoryError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        lines = list(report_lines(report))
        for line in lines[:-1]:
            self.stderr.write(line)
        self.stdout.write(lines[-1])
        if report.rejected:
            raise CommandError(f"{len(report.rejected)} rows were rejected (listed above); the others were stored.",
                               returncode=1)

    def _environment(self, key: str | None) -> Environment:
        if key:
            found = Environment.objects.filter(key=key).first()
            if found is None:
                known = ", ".join(Environment.objects.values_list("key", flat=True))
                raise CommandError(f"No environment '{key}' (there are: {known}).", returncode=2)
            return found
        every = list(Environment.objects.all()[:2])
        if len(every) != 1:
            known = ", ".join(Environment.objects.values_list("key", flat=True))
            raise CommandError(f"Name the environment with --environment (one of: {known}).", returncode=2)
        return every[0]
