"""`python manage.py seed_warehouse --path FILE`: a demo experiment read out in a warehouse.

It writes a DuckDB database file (`FILE`, `.demo/warehouse.duckdb` under `make demo`) with an
`analytics.exposures` and an `analytics.events` table of simulated traffic, adds the data
source `demo-warehouse` that reads them, and one running experiment, `warehouse-pricing`,
whose exposures and events live only there (nothing is posted to the events API). Its first
readout is queued for the Celery worker, which reads it out in DuckDB as it reads out any
experiment; Celery beat's scheduled refresh keeps it current.

Idempotent: with the experiment and the file in place it does nothing; `--force` writes the
file afresh.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from audit.types import Actor
from base.environments import environments_bump
from base.models import Environment
from experiments import services
from experiments.connector_base import csv_write
from experiments.management.commands.seed_experiments import METRICS, ROLES, Demo, demo_traffic
from experiments.models import DataSource, Experiment, Metric, Phase
from flags import services as flag_services
from flags.models import Flag

SOURCE_KEY = "demo-warehouse"
DEMO = Demo("warehouse-pricing", "Annual plan discount (warehouse data)",
            "Showing the annual plan's saving in the basket makes more visitors buy.", "growth",
            (("control", "Monthly price", "monthly"), ("treatment", "Annual saving shown", "annual")),
            8_000, 10, (0.12, 0.132), (0.02, 0.02), 0.5, ("pricing", "warehouse", "demo"), 0.08, 31)
EXPOSURE_QUERY = ("SELECT user_id AS unit_id, exposed_at AS timestamp, experiment_key AS experiment, "
                  "variant AS variation, country, platform, visitor FROM analytics.exposures")
EVENT_QUERY = ("SELECT user_id AS unit_id, occurred_at AS timestamp, event_name AS name, amount AS value "
               "FROM analytics.events")


def warehouse_write(path: Path, items: list[dict[str, Any]]) -> tuple[int, int]:
    """The demo traffic as the warehouse's two tables (timestamps as UTC); rows written."""
    import duckdb

    exposures = [(i["unit_id"], i["timestamp"].replace(tzinfo=None), i["experiment"], i["variation"],
                  i["attributes"]["country"], i["attributes"]["platform"], i["attributes"]["visitor"])
                 for i in items if i["type"] == "exposure"]
    events = [(i["unit_id"], i["timestamp"].replace(tzinfo=None), i["name"], float(i.get("value", 1.0)))
              for i in items if i["type"] == "event"]
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".writing")
    scratch.unlink(missing_ok=True)
    loads: dict[str, tuple[Path, list[tuple[Any, ...]]]] = {
        "exposures": (path.with_suffix(".exposures.csv"), exposures),
        "events": (path.with_suffix(".events.csv"), events)}
    for csv_path, rows in loads.values():
        csv_write(str(csv_path), rows)
    with duckdb.connect(str(scratch)) as conn:
        conn.execute("CREATE SCHEMA analytics")
        conn.execute("CREATE TABLE analytics.exposures (user_id VARCHAR, exposed_at TIMESTAMP, "
                     "experiment_key VARCHAR, variant VARCHAR, country VARCHAR, platform VARCHAR, visitor VARCHAR)")
        conn.execute("CREATE TABLE analytics.events (user_id VARCHAR, occurred_at TIMESTAMP, event_name VARCHAR, "
                     "amount DOUBLE)")
        # A bulk load: DuckDB inserts parameter rows one by one, far slower.
        for table, (csv_path, _) in loads.items():
            conn.execute(f"COPY analytics.{table} FROM '{csv_path}' (FORMAT csv, HEADER false)")
    for csv_path, _ in loads.values():
        csv_path.unlink()
    # Readers never see a half-written file.
    scratch.replace(path)
    return len(exposures), len(events)


class Command(BaseCommand):
    help = "Write a DuckDB warehouse file, add it as a data source, and an experiment read out there."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", required=True, help="the DuckDB database file to write")
        parser.add_argument("--users", type=int, default=DEMO.users)
        parser.add_argument("--environment", default="production")
        parser.add_argument("--force", action="store_true", help="write the file afresh")
        parser.add_argument("--no-readout", action="store_true", help="do not queue the first readout")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            import duckdb  # noqa: F401
        except ImportError as exc:
            raise CommandError("DuckDB is not installed: pip install 'splitbase[duckdb]'.") from exc
        path = Path(options["path"]).resolve()
        actor = Actor(label="seed_warehouse", via="command")
        existing = Experiment.objects.filter(key=DEMO.key).first()
        if existing is not None and path.exists() and not options["force"]:
            self.stdout.write(f"Experiment '{DEMO.key}' and {path.name} exist already; nothing to do.")
            return
        exposures, events = warehouse_write(path, demo_traffic(DEMO, max(20, int(options["users"])), DEMO.seed))
        self.stdout.write(f"Wrote {exposures:,} exposures and {events:,} events to {path}.")
        with transaction.atomic():
            environment = Environment.objects.filter(key=options["environment"]).first() or \
                flag_services.environment_create(actor=actor, key=options["environment"])
            for key, data in METRICS.items():
                if not Metric.objects.filter(key=key).exists():
                    services.metric_create(actor=actor, key=key, **data)
            source = DataSource.objects.filter(key=SOURCE_KEY).first()
            if source is None:
                source = services.data_source_create(
                    actor=actor, key=SOURCE_KEY, name="Demo warehouse (DuckDB)", engine="duckdb",
                    connection={"path": str(path)}, exposure_query=EXPOSURE_QUERY, event_query=EVENT_QUERY,
                    timeout_seconds=120)
            experiment = existing or self._experiment(actor, environment, source)
            if not options["no_readout"]:
                # Sent to the worker when this transaction commits.
                services.experiment_refresh(experiment=experiment, trigger="command")
        self.stdout.write(f"Experiment '{DEMO.key}' reads its data from the data source '{SOURCE_KEY}'.")

    def _experiment(self, actor: Actor, environment: Environment, source: DataSource) -> Experiment:
        flag = Flag.objects.filter(key=DEMO.key).first() or flag_services.flag_create(
            actor=actor, key=DEMO.key, value_type="string", name=DEMO.name, owner=DEMO.owner,
            variants=[{"key": key, "value": value} for key, _, value in DEMO.variants],
        )
        flag_services.flag_state_update(actor=actor, flag=flag, environment=environment, enabled=True)
        experiment = services.experiment_create(
            actor=actor, key=DEMO.key, flag=flag, environment=environment, name=DEMO.name,
            hypothesis=DEMO.hypothesis, owner=DEMO.owner,
            variations=[{"key": key, "weight": 0.5, "name": name} for key, name, _ in DEMO.variants],
            metrics=[{"metric": key, "role": role} for key, role in ROLES.items()],
            slice_attributes=["country", "platform", "visitor"], cuped=True, cuped_lookback_days=14,
            tags=list(DEMO.tags), target_mde=DEMO.target_mde, data_source=source.key,
        )
        experiment = services.experiment_start(actor=actor, experiment=experiment)
        started = datetime.now(tz=UTC) - timedelta(days=DEMO.days, hours=1)
        Phase.objects.filter(experiment=experiment, number=1).update(started_at=started)
        Experiment.objects.filter(pk=experiment.pk).update(started_at=started)
        environments_bump(environment_ids=[environment.pk])
        return experiment
