"""`python manage.py seed_experiments`: a demo experiment with two weeks of simulated traffic.

20,000 users are exposed over the last 14 days to a checkout redesign. The treatment truly
lifts purchases (+15% relative) and leaves page views unchanged, so the first readout shows
one clear winner metric and one flat one. Traffic goes through the same ingestion service as
`POST /api/v1/events`, day by day, with a readout at the end of each simulated day (dated
then), so the trend charts have two weeks of history; `--no-readout` sends it all at once.
Idempotent: an existing demo experiment is left alone unless `--force` (it only gets the demo
tags if it has none).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from audit.types import Actor
from experiments import services
from experiments.models import Experiment, Metric, Phase, ResultSnapshot
from flags import services as flag_services
from flags.models import Environment, Flag

EXPERIMENT = "checkout-redesign"
FLAG = "checkout-redesign"
METRICS: dict[str, dict[str, Any]] = {
    "checkout-conversion": {"kind": "conversion", "event_name": "purchase", "window_hours": 72,
                            "name": "Purchase within 3 days"},
    "revenue-per-user": {"kind": "mean", "event_name": "purchase", "window_hours": 336, "capping": "percentile",
                         "capping_value": 0.99, "name": "Revenue per user (14 days)"},
    "page-views": {"kind": "count", "event_name": "page_view", "window_hours": 336, "name": "Page views"},
    "checkout-errors": {"kind": "count", "event_name": "checkout_error", "window_hours": 336, "direction": "lower",
                        "name": "Checkout errors"},
}
ROLES = {"checkout-conversion": "primary", "revenue-per-user": "secondary", "page-views": "secondary",
         "checkout-errors": "guardrail"}
PURCHASE_RATE = (0.12, 0.138)  # +15 % relative
TAGS = ["checkout", "conversion", "demo"]


class Command(BaseCommand):
    help = "Seed a demo experiment with 14 days of simulated traffic and a readout per day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=20_000)
        parser.add_argument("--days", type=int, default=14)
        parser.add_argument("--environment", default="production")
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--force", action="store_true", help="add traffic even if the experiment exists")
        parser.add_argument("--no-readout", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor(label="seed_experiments", via="command")
        existing = Experiment.objects.filter(key=EXPERIMENT).first()
        if existing is not None and not existing.tags:
            # Seeded before experiments had tags.
            existing = services.experiment_update(actor=actor, experiment=existing, tags=TAGS)
        if existing is not None and not options["force"]:
            self.stdout.write(f"Experiment '{EXPERIMENT}' exists already; nothing to do (use --force to add traffic).")
            return
        days = int(options["days"])
        with transaction.atomic():
            environment = Environment.objects.filter(key=options["environment"]).first() or \
                flag_services.environment_create(actor=actor, key=options["environment"])
            experiment = existing or self._experiment(actor, environment, days)
        environment.refresh_from_db()
        items = self._traffic(int(options["users"]), days, int(options["seed"]))
        if options["no_readout"]:
            sent = self._send(environment, items)
            self.stdout.write(f"Sent {sent:,} exposures and events for '{EXPERIMENT}'.")
            return
        # The traffic arrives day by day, with a readout at the end of each day, so that the
        # result pages show how the estimate and its interval developed over the two weeks.
        sent, readouts, status = 0, 0, "skipped"
        start = datetime.now(tz=UTC) - timedelta(days=days)
        for day in range(1, days + 1):
            until = min(start + timedelta(days=day), datetime.now(tz=UTC))
            today = [item for item in items if item["timestamp"] <= until] if day < days else items
            items = items[len(today):]
            sent += self._send(environment, today)
            snapshot = services.readout_run(experiment_id=experiment.pk, trigger="command")
            if snapshot is None:
                continue
            readouts += 1
            status = snapshot.status
            if day < days:
                ResultSnapshot.objects.filter(pk=snapshot.pk).update(
                    created_at=until, started_at=until, finished_at=until, analysis_end=until)
        self.stdout.write(f"Sent {sent:,} exposures and events for '{EXPERIMENT}'.")
        self.stdout.write(f"Readouts: {readouts}, one per simulated day; the latest: {status}.")

    def _experiment(self, actor: Actor, environment: Environment, days: int) -> Experiment:
        flag = Flag.objects.filter(key=FLAG).first() or flag_services.flag_create(
            actor=actor, key=FLAG, value_type="string", name="Checkout redesign",
            variants=[{"key": "control", "value": "classic"}, {"key": "treatment", "value": "one-page"}],
        )
        flag_services.flag_state_update(actor=actor, flag=flag, environment=environment, enabled=True)
        for key, data in METRICS.items():
            if not Metric.objects.filter(key=key).exists():
                services.metric_create(actor=actor, key=key, **data)
        experiment = services.experiment_create(
            actor=actor, key=EXPERIMENT, flag=flag, environment=environment, name="One-page checkout",
            hypothesis="A one-page checkout removes friction, so more visitors complete a purchase.",
            variations=[{"key": "control", "weight": 0.5, "name": "Classic"},
                        {"key": "treatment", "weight": 0.5, "name": "One page"}],
            metrics=[{"metric": key, "role": role} for key, role in ROLES.items()],
            slice_attributes=["country", "platform"], cuped=True, cuped_lookback_days=14,
            tags=TAGS, target_mde=0.1,
        )
        experiment = services.experiment_start(actor=actor, experiment=experiment)
        # The simulated traffic starts `days` ago: so does the experiment's first phase.
        started = datetime.now(tz=UTC) - timedelta(days=days, hours=1)
        Phase.objects.filter(experiment=experiment, number=1).update(started_at=started)
        Experiment.objects.filter(pk=experiment.pk).update(started_at=started)
        flag_services.environments_bump(environment_ids=[environment.pk])
        return experiment

    def _traffic(self, users: int, days: int, seed: int) -> list[dict[str, Any]]:
        """The simulated exposures and events up to now, in time order (timestamps as datetimes)."""
        rng = random.Random(seed)
        now = datetime.now(tz=UTC)
        items: list[dict[str, Any]] = []

        def add(item: dict[str, Any]) -> None:
            if item["timestamp"] <= now:
                items.append(item)

        for i in range(users):
            unit = f"demo-user-{i}"
            arm = rng.random() < 0.5
            variation = "treatment" if arm else "control"
            first = now - timedelta(seconds=rng.uniform(0, days * 86400))
            activity = rng.gammavariate(2.0, 0.5)  # heavier users browse and buy more, before and after
            add({"type": "exposure", "unit_id": unit, "experiment": EXPERIMENT, "variation": variation,
                 "timestamp": first, "attributes": {"country": rng.choice(["US", "DE", "FR", "GB", "BR"]),
                                                   "platform": rng.choice(["ios", "android", "web"])}})
            for _ in range(int(rng.expovariate(1 / (3 * activity)) + 1)):
                add({"type": "event", "unit_id": unit, "name": "page_view",
                     "timestamp": first + timedelta(hours=rng.uniform(-7 * 24, 14 * 24))})
            if rng.random() < min(0.9, PURCHASE_RATE[arm] * activity):
                add({"type": "event", "unit_id": unit, "name": "purchase",
                     "value": round(rng.lognormvariate(3.5, 0.6), 2),
                     "timestamp": first + timedelta(hours=rng.uniform(0, 72))})
            if rng.random() < 0.05 * activity:
                add({"type": "event", "unit_id": unit, "name": "purchase",
                     "value": round(rng.lognormvariate(3.5, 0.6), 2),
                     "timestamp": first - timedelta(hours=rng.uniform(1, 14 * 24))})
            if rng.random() < 0.02:
                add({"type": "event", "unit_id": unit, "name": "checkout_error",
                     "timestamp": first + timedelta(hours=rng.uniform(0, 48))})
        items.sort(key=lambda item: item["timestamp"])
        return items

    def _send(self, environment: Environment, items: list[dict[str, Any]]) -> int:
        """Ingest `items` through the events service in batches of 1,000; the number accepted."""
        run = f"{int(datetime.now(tz=UTC).timestamp() * 1000)}"
        sent = 0
        for start in range(0, len(items), 1000):
            batch = [
                {**item, "timestamp": item["timestamp"].isoformat(), "id": f"demo-{run}-{start + n}"}
                for n, item in enumerate(items[start:start + 1000])
            ]
            sent += services.events_ingest(environment=environment, items=batch).accepted
        return sent
