"""Reads of experiments, metrics and result snapshots (no writes here)."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from config.errors import NotFound
from experiments.documents import SUMMARY_FIELDS, ExperimentResults, snapshot_record, snapshot_summary
from experiments.models import DataSource, Experiment, ExperimentMetric, Metric, Phase, RampStep, ResultSnapshot
from experiments.readout import READOUT_FIELDS
from flags.models import Flag


def metric_list(
    *, archived: bool | None = False, kind: str | None = None, search: str | None = None
) -> QuerySet[Metric]:
    qs = Metric.objects.all()
    if archived is not None:
        qs = qs.filter(archived_at__isnull=not archived)
    if kind:
        qs = qs.filter(kind=kind)
    if search:
        qs = qs.filter(key__icontains=search)
    return qs


def metric_get(*, key: str) -> Metric:
    metric = Metric.objects.filter(key=key).first()
    if metric is None:
        raise NotFound(f"Metric '{key}' does not exist.", code="metric_not_found")
    return metric


def experiment_list(
    *, status: str | None = None, environment: str | None = None, flag: str | None = None, search: str | None = None,
    tag: str | None = None,
) -> QuerySet[Experiment]:
    qs = Experiment.objects.select_related("environment", "flag", "layer", "holdout", "data_source").prefetch_related(
        "variations",
        "phases",
        Prefetch("experiment_metrics", queryset=ExperimentMetric.objects.select_related("metric")),
    )
    if status:
        qs = qs.filter(status=status)
    if environment:
        qs = qs.filter(environment__key=environment)
    if flag:
        qs = qs.filter(flag__key=flag)
    if search:
        qs = qs.filter(key__icontains=search)
    if tag:
        qs = qs.filter(tags__contains=[tag.strip().lower()])
    return qs


def experiments_of_flag(*, flag: Flag, limit: int = 50) -> list[Experiment]:
    """The newest experiments on a flag, in any environment and status."""
    return list(Experiment.objects.filter(flag=flag).select_related("environment").order_by("-created_at")[:limit])


def experiment_counts_by_flag() -> dict[int, int]:
    """Flag id -> how many experiments use it, for flags that are not archived."""
    return dict(
        Experiment.objects.filter(flag__archived_at__isnull=True)
        .values("flag_id")
        .annotate(n=Count("id"))
        .values_list("flag_id", "n")
    )


def experiment_get(*, key: str) -> Experiment:
    experiment = experiment_list().filter(key=key).first()
    if experiment is None:
        raise NotFound(f"Experiment '{key}' does not exist.", code="experiment_not_found")
    return experiment


def phase_get(*, experiment: Experiment, number: int | None = None) -> Phase | None:
    """The phase with this number, or the current (latest) one."""
    phases = Phase.objects.filter(experiment=experiment)
    if number is None:
        return phases.order_by("-number").first()
    phase = phases.filter(number=number).first()
    if phase is None:
        raise NotFound(f"Experiment '{experiment.key}' has no phase {number}.", code="phase_not_found")
    return phase


def snapshot_history(*, experiment: Experiment, phase: Phase | None = None) -> QuerySet[ResultSnapshot]:
    """Snapshots of the experiment (of one phase when given), newest first."""
    qs = ResultSnapshot.objects.filter(experiment=experiment).select_related("phase", "experiment")
    if phase is not None:
        qs = qs.filter(phase=phase)
    return qs.order_by("-created_at", "-id")


def snapshot_latest(*, experiment: Experiment, phase: Phase | None = None) -> ResultSnapshot | None:
    """The newest finished readout (successful or failed), so a failure is never hidden."""
    return snapshot_history(experiment=experiment, phase=phase).filter(
        status__in=[ResultSnapshot.Status.SUCCESS, ResultSnapshot.Status.FAILED]
    ).first()


def snapshot_latest_success(*, experiment: Experiment, phase: Phase | None = None) -> ResultSnapshot | None:
    return snapshot_history(experiment=experiment, phase=phase).filter(status=ResultSnapshot.Status.SUCCESS).first()


def experiment_results(*, experiment: Experiment, phase_number: int | None = None, history: int = 100
                       ) -> ExperimentResults:
    """The experiment's results in one phase (the current one by default): the newest finished
    readout, the newest successful one when that differs, a readout waiting or running, and the
    last `history` readouts, oldest first."""
    phase = phase_get(experiment=experiment, number=phase_number)
    if phase is None:
        return ExperimentResults(experiment=experiment.key, status=experiment.status, phase=None, latest=None,
                                 latest_success=None, pending=None, history=())
    unread = [name for name in READOUT_FIELDS if name not in SUMMARY_FIELDS]
    recent = list(snapshot_history(experiment=experiment, phase=phase).defer(*unread)[:history])
    latest = snapshot_latest(experiment=experiment, phase=phase)
    success = snapshot_latest_success(experiment=experiment, phase=phase)
    pending = next((s for s in recent if s.status in (ResultSnapshot.Status.QUEUED, ResultSnapshot.Status.RUNNING)),
                   None)
    return ExperimentResults(
        experiment=experiment.key,
        status=experiment.status,
        phase=phase.number,
        latest=snapshot_record(latest) if latest else None,
        latest_success=snapshot_record(success) if success is not None and success != latest else None,
        pending=snapshot_summary(pending) if pending else None,
        history=tuple(snapshot_summary(s) for s in reversed(recent)),
    )


def data_source_list(*, engine: str | None = None, search: str | None = None) -> QuerySet[DataSource]:
    qs = DataSource.objects.all()
    if engine:
        qs = qs.filter(engine=engine)
    if search:
        qs = qs.filter(key__icontains=search)
    return qs


def data_source_get(*, key: str) -> DataSource:
    source = DataSource.objects.filter(key=key).first()
    if source is None:
        raise NotFound(f"Data source '{key}' does not exist.", code="data_source_not_found")
    return source


def ramp_steps(*, experiment: Experiment, limit: int = 50) -> list[RampStep]:
    """The experiment's ramp steps: the planned ones and the latest done, in time order."""
    planned = list(experiment.ramp_steps.filter(status=RampStep.Status.PLANNED))
    done = list(experiment.ramp_steps.exclude(status=RampStep.Status.PLANNED).order_by("-apply_at", "-id")[:limit])
    return sorted([*done, *planned], key=lambda s: (s.apply_at, s.pk))
