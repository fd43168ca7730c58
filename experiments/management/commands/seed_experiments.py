"""`python manage.py seed_experiments`: demo experiments with simulated traffic.

Five experiments, each with the outcome a growth team meets most often, so that the list and
result pages show every kind of recommendation:

- `checkout-redesign`: 20,000 users over 14 days; the one-page checkout truly lifts purchases
  (+15% relative) and leaves page views unchanged: ship.
- `semantic-search`: 6,000 users over 5 days and a small true effect (+2.5%): too early to say.
- `recommendations-carousel`: 16,000 users over 10 days; a little more buying, but checkout
  errors rise by 75%: the guardrail says roll back.
- `onboarding-checklist`: 12,000 users over 8 days, split 50/50 by configuration but received
  about 53.5/46.5 (a client drops some control exposures): a sample ratio mismatch.
- `free-shipping-threshold`: 16,000 users over 9 days, read out with the Bayesian engine; a
  lower free-shipping threshold truly lifts purchases (+10% relative): the result page shows the
  chance to win, the risk of each choice and the credible interval.

Traffic goes through the same ingestion service as `POST /api/v1/events`, day by day, with a
readout at the end of each simulated day (dated then), so the trend charts have history; the
exposures of each day count as evaluations of the experiment's flag, recorded as the events
API records them (the flag's "last evaluated" time follows the traffic up to its latest exposure);
`--no-readout` sends it all at once. `--users` scales every experiment (20,000 is the
default scale). Idempotent: an existing demo experiment is left alone unless `--force` (it
only gets its demo tags if it has none).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from audit.types import Actor
from base.environments import environments_bump
from base.models import Environment
from experiments import services
from experiments.models import Experiment, Metric, Phase, ResultSnapshot
from flags import services as flag_services
from flags.models import Flag
from flags.usage import flag_usage_record

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
SCALE = 20_000


@dataclass(frozen=True)
class Demo:
    key: str
    name: str
    hypothesis: str
    owner: str
    variants: tuple[tuple[str, str, str], ...]  # (variation key, name, flag value)
    users: int  # at the default scale
    days: int
    purchase_rate: tuple[float, float]  # control, treatment
    error_rate: tuple[float, float]
    treatment_share: float  # of the exposures received (configured: 50/50)
    tags: tuple[str, ...]
    target_mde: float
    seed: int  # of the simulation, picked so that the sample shows the true effects plainly
    engine: str = "frequentist"  # the statistics engine of its readouts


DEMOS = (
    Demo("checkout-redesign", "One-page checkout",
         "A one-page checkout removes friction, so more visitors complete a purchase.", "growth",
         (("control", "Classic", "classic"), ("treatment", "One page", "one-page")),
         20_000, 14, (0.12, 0.138), (0.02, 0.02), 0.5, ("checkout", "conversion", "demo"), 0.12, 15),
    Demo("semantic-search", "Semantic search ranking",
         "Ranking results by meaning finds what visitors look for, so more of them buy.", "search",
         (("control", "Keyword ranking", "bm25"), ("treatment", "Semantic ranking", "semantic")),
         6_000, 5, (0.12, 0.123), (0.02, 0.02), 0.5, ("search", "demo"), 0.05, 25),
    Demo("recommendations-carousel", "Recommendations carousel",
         "A carousel of related products in the basket raises the order rate.", "growth",
         (("control", "No carousel", "off"), ("treatment", "Carousel", "on")),
         16_000, 10, (0.12, 0.126), (0.02, 0.035), 0.5, ("checkout", "demo"), 0.05, 16),
    Demo("onboarding-checklist", "Onboarding checklist",
         "A checklist on the first visit brings new visitors to their first purchase sooner.", "activation",
         (("control", "No checklist", "off"), ("treatment", "Checklist", "on")),
         12_000, 8, (0.12, 0.13), (0.02, 0.02), 0.535, ("onboarding", "demo"), 0.1, 22),
    Demo("free-shipping-threshold", "Free shipping from 30 instead of 50",
         "A lower free-shipping threshold makes more baskets worth ordering.", "growth",
         (("control", "From 50", "50"), ("treatment", "From 30", "30")),
         16_000, 9, (0.12, 0.132), (0.02, 0.02), 0.5, ("checkout", "bayesian", "demo"), 0.08, 31, "bayesian"),
)


def demo_traffic(demo: Demo, users: int, seed: int) -> list[dict[str, Any]]:
    """The simulated exposures and events up to now, in time order (timestamps as datetimes)."""
    rng = random.Random(seed)
    now = datetime.now(tz=UTC)
    items: list[dict[str, Any]] = []
    control, treatment = demo.variants[0][0], demo.variants[1][0]

    def add(item: dict[str, Any]) -> None:
        if item["timestamp"] <= now:
            items.append(item)

    for i in range(users):
        unit = f"demo-{demo.key}-{i}"
        arm = rng.random() < demo.treatment_share
        first = now - timedelta(seconds=rng.uniform(0, demo.days * 86400))
        returning = rng.random() < 0.4
        # Heavier users browse and buy more, before and after; returning visitors more so.
        activity = rng.gammavariate(2.0, 0.6 if returning else 0.45)
        add({"type": "exposure", "unit_id": unit, "experiment": demo.key,
             "variation": treatment if arm else control, "timestamp": first,
             "attributes": {"country": rng.choice(["US", "DE", "FR", "GB", "BR"]),
                            "platform": rng.choice(["ios", "android", "web"]),
                            "visitor": "returning" if returning else "new"}})
        for _ in range(int(rng.expovariate(1 / (3 * activity)) + 1)):
            add({"type": "event", "unit_id": unit, "name": "page_view",
                 "timestamp": first + timedelta(hours=rng.uniform(-7 * 24, 14 * 24))})
        if rng.random() < min(0.9, demo.purchase_rate[arm] * activity):
            add({"type": "event", "unit_id": unit, "name": "purchase",
                 "value": round(rng.lognormvariate(3.5, 0.6), 2),
                 "timestamp": first + timedelta(hours=rng.uniform(0, 72))})
        if returning and rng.random() < 0.08 * activity:
            add({"type": "event", "unit_id": unit, "name": "purchase",
                 "value": round(rng.lognormvariate(3.5, 0.6), 2),
                 "timestamp": first - timedelta(hours=rng.uniform(1, 14 * 24))})
        if rng.random() < demo.error_rate[arm]:
            add({"type": "event", "unit_id": unit, "name": "checkout_error",
                 "timestamp": first + timedelta(hours=rng.uniform(0, 48))})
    items.sort(key=lambda item: item["timestamp"])
    return items


class Command(BaseCommand):
    help = "Seed five demo experiments with simulated traffic and a readout per simulated day."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=SCALE,
                            help="users of the largest demo experiment; the others scale with it")
        parser.add_argument("--environment", default="production")
        parser.add_argument("--seed", type=int, default=0, help="shifts the seed of every simulation")
        parser.add_argument("--force", action="store_true", help="add traffic even if the experiment exists")
        parser.add_argument("--no-readout", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor(label="seed_experiments", via="command")
        scale = int(options["users"]) / SCALE
        with transaction.atomic():
            environment = Environment.objects.filter(key=options["environment"]).first() or \
                flag_services.environment_create(actor=actor, key=options["environment"])
            for key, data in METRICS.items():
                if not Metric.objects.filter(key=key).exists():
                    services.metric_create(actor=actor, key=key, **data)
        for demo in DEMOS:
            existing = Experiment.objects.filter(key=demo.key).first()
            if existing is not None and not existing.tags:
                # Seeded before experiments had tags.
                existing = services.experiment_update(actor=actor, experiment=existing, tags=list(demo.tags))
            if existing is not None and not options["force"]:
                self.stdout.write(f"Experiment '{demo.key}' exists already; nothing to do "
                                  "(use --force to add traffic).")
                continue
            with transaction.atomic():
                experiment = existing or self._experiment(actor, environment, demo)
            environment.refresh_from_db()
            users = max(20, round(demo.users * scale))
            items = self._traffic(demo, users, demo.seed + int(options["seed"]))
            self._deliver(experiment, environment, demo, items, readouts=not options["no_readout"])

    def _deliver(self, experiment: Experiment, environment: Environment, demo: Demo, items: list[dict[str, Any]],
                 *, readouts: bool) -> None:
        if not readouts:
            sent = self._send(experiment, environment, items)
            self.stdout.write(f"Sent {sent:,} exposures and events for '{demo.key}'.")
            return
        # The traffic arrives day by day, with a readout at the end of each day, so that the
        # result pages show how the estimate and its interval developed.
        sent, done, status = 0, 0, "skipped"
        start = datetime.now(tz=UTC) - timedelta(days=demo.days)
        for day in range(1, demo.days + 1):
            until = min(start + timedelta(days=day), datetime.now(tz=UTC))
            today = [item for item in items if item["timestamp"] <= until] if day < demo.days else items
            items = items[len(today):]
            sent += self._send(experiment, environment, today)
            snapshot = services.readout_run(experiment_id=experiment.pk, trigger="command")
            if snapshot is None:
                continue
            done += 1
            status = snapshot.status
            if day < demo.days:
                ResultSnapshot.objects.filter(pk=snapshot.pk).update(
                    created_at=until, started_at=until, finished_at=until, analysis_end=until)
        self.stdout.write(f"Sent {sent:,} exposures and events for '{demo.key}'; "
                          f"{done} readouts, one per simulated day; the latest: {status}.")

    def _experiment(self, actor: Actor, environment: Environment, demo: Demo) -> Experiment:
        flag = Flag.objects.filter(key=demo.key).first() or flag_services.flag_create(
            actor=actor, key=demo.key, value_type="string", name=demo.name, owner=demo.owner,
            variants=[{"key": key, "value": value} for key, _, value in demo.variants],
        )
        flag_services.flag_state_update(actor=actor, flag=flag, environment=environment, enabled=True)
        experiment = services.experiment_create(
            actor=actor, key=demo.key, flag=flag, environment=environment, name=demo.name,
            hypothesis=demo.hypothesis, owner=demo.owner,
            variations=[{"key": key, "weight": 0.5, "name": name} for key, name, _ in demo.variants],
            metrics=[{"metric": key, "role": role} for key, role in ROLES.items()],
            slice_attributes=["country", "platform", "visitor"], cuped=True, cuped_lookback_days=14,
            tags=list(demo.tags), target_mde=demo.target_mde, stats_engine=demo.engine,
        )
        experiment = services.experiment_start(actor=actor, experiment=experiment)
        # The simulated traffic starts `days` ago: so does the experiment's first phase.
        started = datetime.now(tz=UTC) - timedelta(days=demo.days, hours=1)
        Phase.objects.filter(experiment=experiment, number=1).update(started_at=started)
        Experiment.objects.filter(pk=experiment.pk).update(started_at=started)
        environments_bump(environment_ids=[environment.pk])
        return experiment

    def _traffic(self, demo: Demo, users: int, seed: int) -> list[dict[str, Any]]:
        return demo_traffic(demo, users, seed)

    def _send(self, experiment: Experiment, environment: Environment, items: list[dict[str, Any]]) -> int:
        """Ingest `items` through the events service in batches of 1,000; the number accepted.

        As for `POST /api/v1/events`, the latest exposure accepted is an evaluation of the
        experiment's flag."""
        run = f"{int(datetime.now(tz=UTC).timestamp() * 1000)}"
        sent = 0
        flag_key = experiment.flag.key
        for start in range(0, len(items), 1000):
            batch = [
                {**item, "timestamp": item["timestamp"].isoformat(), "id": f"demo-{run}-{start + n}"}
                for n, item in enumerate(items[start:start + 1000])
            ]
            result = services.events_ingest(environment=environment, items=batch)
            sent += result.accepted
            if experiment.pk in result.exposed:
                flag_usage_record(environment=environment, evaluated={flag_key: result.exposed[experiment.pk]})
        return sent
