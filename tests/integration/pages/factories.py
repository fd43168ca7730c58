"""Experiments with stored readouts for the result pages, built without raw events.

The experiment, its flag, metrics and phase are made through the services. Readouts are
made by the experiments app's own `readout_input` and `readout_compute` (the code the Celery
readout runs after its SQL), fed with per-variation sufficient statistics computed from known
rates and means, so the snapshots have exactly the stored shape while skipping event ingestion.
`snapshot_series` writes a history of readouts for the trend chart.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from audit.types import Actor
from base.models import Environment
from experiments import services as experiment_services
from experiments.mappers import readout_input
from experiments.models import Experiment, ExperimentMetric, Metric, Phase, ResultSnapshot
from experiments.readout import readout_compute, readout_to_json
from experiments.readout_sql import AggregateRow
from flags import services as flag_services

ACTOR = Actor(label="pages-tests", via="system")
BINARY = ("conversion", "retention", "funnel")


@dataclass(frozen=True)
class MetricPlan:
    """A metric and the truth the synthetic readout is built from."""

    key: str
    kind: str = "conversion"
    role: str = "secondary"
    direction: str = "higher"
    base: float = 0.1  # rate for binary kinds, mean for mean/count, numerator mean for ratio
    spread: float = 1.0  # per-unit standard deviation of means and counts
    effects: tuple[float, ...] = (0.0,)  # relative effect of each treatment
    denominator: float = 5.0  # ratio metrics: mean denominator per unit
    covariate_corr: float = 0.6  # correlation with the pre-period value (CUPED)

    def catalog(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "direction": self.direction, "name": self.key.replace("-", " ")}
        if self.kind == "ratio":
            data.update(event_name=f"{self.key}_num", denominator_event=f"{self.key}_den")
        elif self.kind == "funnel":
            data.update(funnel_steps=[f"{self.key}_1", f"{self.key}_2"])
        elif self.kind == "retention":
            data.update(event_name=f"{self.key}_active", retention_day=7)
        else:
            data.update(event_name=self.key)
        return data


@dataclass
class ExperimentPlan:
    key: str
    metrics: Sequence[MetricPlan]
    variations: Sequence[str] = ("control", "treatment")
    weights: Sequence[float] | None = None
    users: int = 20_000  # exposed units in the last readout
    arrival_skew: Sequence[float] | None = None  # per-variation factor on units (an SRM)
    slices: Mapping[str, Sequence[str]] = field(default_factory=dict)
    combos: int = 60  # distinct combinations of slice values (rows per variation)
    sequential: bool = True
    cuped: bool = True
    days: float = 14.0
    history: int = 8  # readouts stored, the last with slices
    owner: str = "growth"
    tags: Sequence[str] = ()
    seed: int = 7
    target_mde: float = 5.0  # percent, written into the description as the wizard does
    extra: dict[str, Any] = field(default_factory=dict)
    # Slice values whose treatment effects are multiplied by a factor: {("country", "DE"): 4.0}.
    slice_effects: Mapping[tuple[str, str], float] = field(default_factory=dict)


def staff_user(username: str = "analyst", *, read_only: bool = False) -> User:
    """A staff member: full change rights, or the read-only role (view permissions only)."""
    user = User.objects.create_user(username, f"{username}@example.com", "pw-12345-x", is_staff=True)
    codenames = ["view_experiment", "view_flag", "view_resultsnapshot", "view_metric"]
    if not read_only:
        codenames += ["add_experiment", "change_experiment", "add_flag", "change_flag", "add_rule", "change_rule"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def environment(key: str = "production") -> Environment:
    found = Environment.objects.filter(key=key).first()
    return found or flag_services.environment_create(actor=ACTOR, key=key)


def ensure_metrics(plans: Sequence[MetricPlan]) -> dict[str, Metric]:
    existing = {m.key: m for m in Metric.objects.filter(key__in=[p.key for p in plans])}
    for plan in plans:
        if plan.key not in existing:
            existing[plan.key] = experiment_services.metric_create(actor=ACTOR, key=plan.key, **plan.catalog())
    return existing


def create_experiment(plan: ExperimentPlan, env: Environment | None = None, *, start: bool = True) -> Experiment:
    env = env or environment()
    variants = [{"key": v, "value": v} for v in plan.variations]
    flag = flag_services.flag_create(actor=ACTOR, key=f"{plan.key}-flag", value_type="string", variants=variants,
                                     tags=list(plan.tags))
    flag_services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)
    ensure_metrics(plan.metrics)
    weights = list(plan.weights or [1.0 / len(plan.variations)] * len(plan.variations))
    weights[-1] = 1.0 - sum(weights[:-1])
    experiment = experiment_services.experiment_create(
        actor=ACTOR, key=plan.key, flag=flag, environment=env, owner=plan.owner,
        hypothesis=f"Changing {plan.key} moves {plan.metrics[0].key}.", name=plan.key.replace("-", " ").title(),
        variations=[{"key": v, "name": v.title(), "weight": w} for v, w in zip(plan.variations, weights, strict=True)],
        metrics=[{"metric": m.key, "role": m.role} for m in plan.metrics],
        sequential=plan.sequential, cuped=plan.cuped, slice_attributes=list(plan.slices),
        description=f"Target MDE: {plan.target_mde:g}%", tags=list(plan.tags),
        min_sample_per_arm=100, **plan.extra,
    )
    if start:
        experiment = experiment_services.experiment_start(actor=ACTOR, experiment=experiment)
        started = timezone.now() - timedelta(days=plan.days)
        Phase.objects.filter(experiment=experiment).update(started_at=started)
        Experiment.objects.filter(pk=experiment.pk).update(started_at=started)
        experiment.refresh_from_db()
    return experiment


def _sums(plan: MetricPlan, arm: int, n: int, jitter: float, scale: float = 1.0) -> tuple[float | None, ...]:
    """Expected sufficient statistics of `n` units of one arm (columns of `metric_columns`);
    `scale` multiplies the treatment's effect."""
    lift = 1.0 + scale * (plan.effects[arm - 1] if arm > 0 and arm - 1 < len(plan.effects) else 0.0)
    rho = plan.covariate_corr
    if plan.kind in BINARY:
        p = min(max(plan.base * lift * jitter, 1e-4), 0.999)
        p_pre = min(max(plan.base * jitter, 1e-4), 0.999)
        y = round(n * p)
        x = round(n * p_pre)
        cov = rho * math.sqrt(p * (1 - p) * p_pre * (1 - p_pre))
        xy = min(min(x, y), max(0.0, n * (p * p_pre + cov)))
        return (n, y, y, x, x, xy)
    mean = plan.base * lift * jitter
    pre = plan.base * jitter
    sd = plan.spread * plan.base
    main = (n, n * mean, n * (sd * sd + mean * mean), n * pre, n * (sd * sd + pre * pre),
            n * (mean * pre + rho * sd * sd))
    if plan.kind != "ratio":
        return main
    d = plan.denominator
    sd_d = d * 0.5
    # Ratio sums without the pre-period denominator: the readout then runs ratios without CUPED.
    return (*main, n * d, n * (sd_d * sd_d + d * d), n * (mean * d + 0.3 * sd * sd_d), *([None] * 6))


def aggregate_rows(plan: ExperimentPlan, users: int, *, with_slices: bool, rng: random.Random) -> list[AggregateRow]:
    """Rows like `readout_sql.aggregate` returns: per variation and combination of slice values."""
    weights = list(plan.weights or [1.0 / len(plan.variations)] * len(plan.variations))
    skew = list(plan.arrival_skew or [1.0] * len(plan.variations))
    attributes = list(plan.slices) if with_slices else []
    combos = plan.combos if attributes else 1
    rows: list[AggregateRow] = []
    share = [rng.uniform(0.5, 1.5) for _ in range(combos)]
    total_share = sum(share)
    jitters = [rng.uniform(0.85, 1.15) for _ in range(combos)]
    full = math.prod(len(plan.slices[a]) for a in attributes) <= combos
    for c in range(combos):
        # Mixed radix when the combinations fit (every pairing appears), else each attribute
        # cycles through its values on its own; either way every value of every attribute appears.
        values: list[str] = []
        stride = 1
        for k, a in enumerate(attributes):
            options = plan.slices[a]
            index = (c // stride) if full else c + k * (c // len(options))
            values.append(str(options[index % len(options)]))
            stride *= len(options)
        slice_values = tuple(values)
        scale = math.prod(plan.slice_effects.get((a, v), 1.0) for a, v in zip(attributes, values, strict=True))
        for arm in range(len(plan.variations)):
            n = max(2, round(users * weights[arm] * skew[arm] * share[c] / total_share))
            rows.append(AggregateRow(
                variation=arm, slices=slice_values, units=n,
                sums=tuple(_sums(m, arm, n, jitters[c] if attributes else 1.0, scale) for m in plan.metrics),
            ))
    return rows


def store_snapshot(experiment: Experiment, plan: ExperimentPlan, *, users: int, at: datetime, with_slices: bool,
                   rng: random.Random, multiple: int = 0) -> ResultSnapshot:
    """One successful readout, written like `readout_jobs._compute` writes it."""
    phase = Phase.objects.filter(experiment=experiment).order_by("-number").first()
    assert phase is not None
    links = list(ExperimentMetric.objects.filter(experiment=experiment).select_related("metric"))
    variations = list(experiment.variations.order_by("position"))
    rows = aggregate_rows(plan, users, with_slices=with_slices, rng=rng)
    readout = readout_compute(readout_input(
        experiment=experiment, variations=variations, weights=[v.weight for v in variations], links=links,
        rows=rows, caps={}, slice_attributes=list(plan.slices) if with_slices else [], analysis_end=at,
        phase_number=phase.number, multiple_exposure_units=multiple,
    ))
    snapshot = ResultSnapshot.objects.create(
        experiment=experiment, phase=phase, status=ResultSnapshot.Status.SUCCESS,
        trigger=ResultSnapshot.Trigger.SCHEDULE, attempts=1, started_at=at, finished_at=at, duration_ms=120,
        analysis_end=at, rollup_mode="full", **readout_to_json(readout),
    )
    ResultSnapshot.objects.filter(pk=snapshot.pk).update(created_at=at)
    snapshot.created_at = at
    return snapshot


def snapshot_series(experiment: Experiment, plan: ExperimentPlan, *, multiple: int = 0) -> list[ResultSnapshot]:
    """`plan.history` readouts spread over the experiment's days; users grow linearly."""
    rng = random.Random(plan.seed)
    now = timezone.now()
    count = max(1, plan.history)
    out = []
    for i in range(count):
        fraction = (i + 1) / count
        at = now - timedelta(days=plan.days * (1 - fraction)) - timedelta(minutes=1)
        last = i == count - 1
        out.append(store_snapshot(experiment, plan, users=max(50, round(plan.users * fraction)), at=at,
                                  with_slices=last, rng=rng, multiple=multiple if last else 0))
    return out


def seed(plan: ExperimentPlan, env: Environment | None = None, *, multiple: int = 0) -> Experiment:
    experiment = create_experiment(plan, env)
    snapshot_series(experiment, plan, multiple=multiple)
    return experiment


# Ready-made plans ---------------------------------------------------------------------------------

SLICES = {
    "country": ("US", "DE", "FR", "GB", "BR", "IN"),
    "platform": ("ios", "android", "web"),
    "plan": ("free", "pro", "team"),
    "user_type": ("new", "returning"),
}


def winner_plan(key: str = "checkout-redesign", **changes: Any) -> ExperimentPlan:
    """A clear win on the primary metric, nothing on the rest, guardrails fine."""
    plan = ExperimentPlan(
        key=key,
        metrics=[
            MetricPlan("purchase", "conversion", "primary", base=0.12, effects=(0.12,)),
            MetricPlan("revenue", "mean", "secondary", base=8.0, spread=3.0, effects=(0.03,)),
            MetricPlan("ctr", "ratio", "secondary", base=1.0, spread=1.0, denominator=6.0, effects=(0.0,)),
            MetricPlan("errors", "count", "guardrail", direction="lower", base=0.3, spread=2.0, effects=(0.0,)),
        ],
        users=24_000, slices=dict(SLICES), tags=("checkout",),
    )
    for name, value in changes.items():
        setattr(plan, name, value)
    return plan


def srm_plan(key: str = "pricing-page-srm") -> ExperimentPlan:
    """Users arrive 54/46 under a 50/50 split: the sample-ratio check must fail."""
    return ExperimentPlan(
        key=key,
        metrics=[MetricPlan("purchase", "conversion", "primary", base=0.12, effects=(0.02,)),
                 MetricPlan("errors", "count", "guardrail", direction="lower", base=0.3, spread=2.0)],
        users=20_000, arrival_skew=(1.08, 0.92), slices={"country": SLICES["country"]}, tags=("pricing",),
    )


def guardrail_plan(key: str = "fast-checkout") -> ExperimentPlan:
    """Primary up, but a guardrail (errors, lower is better) significantly worse."""
    return ExperimentPlan(
        key=key,
        metrics=[MetricPlan("purchase", "conversion", "primary", base=0.12, effects=(0.1,)),
                 MetricPlan("errors", "count", "guardrail", direction="lower", base=0.3, spread=2.0, effects=(0.4,))],
        users=30_000, slices={}, tags=("checkout",),
    )


def flat_plan(key: str = "onboarding-copy", **changes: Any) -> ExperimentPlan:
    """No effect anywhere."""
    plan = ExperimentPlan(
        key=key,
        metrics=[MetricPlan("signup", "conversion", "primary", base=0.3, effects=(0.0,)),
                 MetricPlan("errors", "count", "guardrail", direction="lower", base=0.3, spread=2.0)],
        users=16_000, slices={"platform": SLICES["platform"]}, tags=("onboarding",), sequential=False,
    )
    for name, value in changes.items():
        setattr(plan, name, value)
    return plan


def large_plan(key: str = "big-readout") -> ExperimentPlan:
    """20 metrics x 3 variations x 50 slices (the page's performance target)."""
    kinds = ("conversion", "mean", "count", "ratio", "retention")
    metrics = [
        MetricPlan(f"metric-{i:02d}", kinds[i % len(kinds)], "primary" if i == 0 else
                   "guardrail" if i >= 17 else "secondary", base=0.2 if kinds[i % len(kinds)] in BINARY else 4.0,
                   spread=2.0, effects=(0.02 * (i % 3), -0.01 * (i % 2)))
        for i in range(20)
    ]
    slices = {
        "country": tuple(f"C{i:02d}" for i in range(20)),
        "platform": ("ios", "android", "web", "tv", "desktop"),
        "plan": ("free", "basic", "pro", "team", "enterprise"),
        "segment": tuple(f"S{i:02d}" for i in range(20)),
    }
    return ExperimentPlan(key=key, metrics=metrics, variations=("control", "treatment-a", "treatment-b"),
                          users=300_000, slices=slices, combos=400, history=60, days=15)
