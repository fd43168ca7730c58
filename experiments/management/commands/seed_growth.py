"""`python manage.py seed_growth`: a holdout with shipped experiments and its readout, for the
demo's holdout and growth pages.

- the metric `orders` (orders per user within 14 days of the first exposure), created if missing;
- the holdout `growth-h2` (20% of users), read out in the environment on `orders`;
- two experiments in its scope, run and shipped: `onboarding-tour` (true effect +6% orders) and
  `one-click-reorder` (+4%), with readouts; their flags keep the held-out users on the old value;
- `smart-search`, running in the holdout's scope;
- `orders` as the project's north star, unless one is chosen already;
- every user's arm of the holdout reported as the tracking rule reports it, and their orders:
  released users got each shipped change half of the time during the experiments, so the holdout
  measures less than the sum of the shipped lifts.

Traffic goes through the ingestion service, as `POST /api/v1/events` would send it; readouts run
in this process. Idempotent: an existing holdout `growth-h2` leaves everything as it is.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from audit.types import Actor
from base.environments import environments_bump
from base.models import Environment
from experiments import ingestion, services
from experiments.growth import north_star_get, north_star_set
from experiments.holdout_analyses import holdout_analysis_create
from experiments.holdout_readout import holdout_readout_run, holdout_refresh
from experiments.models import Experiment, HoldoutAnalysis, Metric, Phase
from flags import services as flag_services
from traffic import services as traffic_services
from traffic.assignment.bucketing import holdout_experiment_key
from traffic.assignment.hashing import hash_v2
from traffic.models import Holdout

ACTOR = Actor(label="seed_growth", via="system")
HOLDOUT = "growth-h2"
SHARE = 0.2
NORTH_STAR = "orders"
BASE_ORDERS = 0.8
# (key, flag, true effect on orders, days ago started, days ago stopped or None while running)
EXPERIMENTS = (
    ("onboarding-tour", "onboarding-tour", 0.06, 38, 20),
    ("one-click-reorder", "one-click-reorder", 0.04, 37, 16),
    ("smart-search", "smart-search", 0.02, 6, None),
)
BATCH = 1000


def _metric() -> Metric:
    found = Metric.objects.filter(key=NORTH_STAR).first()
    return found or services.metric_create(
        actor=ACTOR, key=NORTH_STAR, kind="count", event_name="order", window_hours=336,
        name="Orders per user (14 days)")


def _flag(key: str, environment: Environment) -> Any:
    flag = flag_services.flag_create(actor=ACTOR, key=key, value_type="boolean",
                                     variants=[{"key": "off", "value": False}, {"key": "on", "value": True}],
                                     default_variant="off")
    flag_services.flag_state_update(actor=ACTOR, flag=flag, environment=environment, enabled=True)
    return flag


def _send(environment: Environment, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), BATCH):
        result = ingestion.events_ingest(environment=environment.pk, items=items[start:start + BATCH])
        if result.rejected:
            raise ValueError(f"Seeded traffic was refused: {result.rejected[:3]}")


def _backdate(experiment: Experiment, started: datetime) -> None:
    Phase.objects.filter(experiment=experiment, number=1).update(started_at=started)
    Experiment.objects.filter(pk=experiment.pk).update(started_at=started)
    environments_bump(environment_ids=[experiment.environment_id])


def seed_growth(*, environment: Environment, users: int = 6000, now: datetime | None = None) -> dict[str, Any]:
    """Seed the holdout, its experiments and their traffic in `environment` (see the module)."""
    if Holdout.objects.filter(key=HOLDOUT).exists():
        return {"holdout": HOLDOUT, "created": False}
    now = now or datetime.now(tz=UTC)
    rng = random.Random(7)
    _metric()
    holdout = traffic_services.holdout_create(actor=ACTOR, key=HOLDOUT, share=SHARE, name="Growth holdout H2",
                                              description="Measures what the shipped experiments add up to.")
    analysis = holdout_analysis_create(actor=ACTOR, holdout=holdout, environment=environment,
                                       metrics=[{"metric": NORTH_STAR, "role": "primary"}],
                                       started_at=now - timedelta(days=40))
    units = [f"grower-{i}" for i in range(users)]
    # Each user arrives once, 36 days ago give or take a day, and meets every flag then.
    arrival = {u: now - timedelta(days=36, hours=i % 24) for i, u in enumerate(units)}
    held = {u for u in units if hash_v2(holdout.seed, u) < SHARE}
    arms: dict[str, dict[str, bool]] = {u: {} for u in units}
    for key, flag_key, _, started_days, _stopped in EXPERIMENTS:
        flag = _flag(flag_key, environment)
        experiment = services.experiment_create(
            actor=ACTOR, key=key, flag=flag, environment=environment, holdout=HOLDOUT, name=key.replace("-", " "),
            variations=[{"key": "off", "weight": 0.5}, {"key": "on", "weight": 0.5}],
            metrics=[{"metric": NORTH_STAR, "role": "primary"}], cuped=False, target_mde=0.05)
        experiment = services.experiment_start(actor=ACTOR, experiment=experiment)
        _backdate(experiment, now - timedelta(days=started_days))
        items: list[dict[str, Any]] = []
        for unit in units:
            if unit in held:
                continue
            treated = hash_v2(experiment.seed or key, unit) >= 0.5
            arms[unit][key] = treated
            seen = max(arrival[unit], now - timedelta(days=started_days)) + timedelta(hours=1)
            items.append({"id": f"{key}-x-{unit}", "type": "exposure", "unit_id": unit, "experiment": key,
                          "variation": "on" if treated else "off", "timestamp": seen.isoformat()})
        _send(environment, items)
    # Each user's arm of the holdout, and their orders in the 14 days after it.
    effects = {key: effect for key, _, effect, _, _ in EXPERIMENTS}
    items = []
    for unit in units:
        seen = arrival[unit]
        arm = "held-out" if unit in held else "released"
        items.append({"id": f"holdout-x-{unit}", "type": "exposure", "unit_id": unit,
                      "experiment": holdout_experiment_key(HOLDOUT), "variation": arm, "timestamp": seen.isoformat()})
        rate = BASE_ORDERS
        for key, treated in arms[unit].items():
            rate *= 1 + (effects[key] if treated else 0.0)
        orders = sum(1 for _ in range(6) if rng.random() < rate / 6)
        for n in range(orders):
            items.append({"id": f"order-{unit}-{n}", "type": "event", "unit_id": unit, "name": "order", "value": 1,
                          "timestamp": (seen + timedelta(hours=2 + rng.uniform(0, 24 * 12))).isoformat()})
    _send(environment, items)
    shipped = []
    for key, _, _, _, stopped_days in EXPERIMENTS:
        experiment = Experiment.objects.get(key=key)
        services.readout_run(experiment_id=experiment.pk, trigger="command")
        if stopped_days is not None:
            with transaction.atomic():
                services.experiment_stop(actor=ACTOR, experiment=experiment, decision="ship", variation="on",
                                         note="Seeded: shipped after a significant lift on orders.")
            Experiment.objects.filter(pk=experiment.pk).update(stopped_at=now - timedelta(days=stopped_days))
            shipped.append(key)
    with transaction.atomic():
        snapshot = holdout_refresh(analysis=HoldoutAnalysis.objects.get(pk=analysis.pk), trigger="command")
    holdout_readout_run(snapshot_id=snapshot.pk)
    if north_star_get() is None:
        north_star_set(actor=ACTOR, metric=NORTH_STAR)
    return {"holdout": HOLDOUT, "created": True, "shipped": shipped, "analysis": analysis.pk}


class Command(BaseCommand):
    help = "Seed a holdout with shipped experiments, their traffic and readouts (the holdout and growth pages)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--environment", default="production")
        parser.add_argument("--users", type=int, default=6000)

    def handle(self, *args: Any, **options: Any) -> None:
        environment = Environment.objects.get(key=options["environment"])
        result = seed_growth(environment=environment, users=options["users"])
        self.stdout.write(f"Growth seed: {result}")
