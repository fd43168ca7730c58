"""Readouts: SQL sufficient statistics -> statistics engine -> a stored ResultSnapshot.

`experiment_refresh` queues one (a snapshot row in state `queued`, and the Celery task after
the transaction commits); `readout_run` does the work inside the worker. One readout per
experiment runs at a time: the work happens under a PostgreSQL advisory lock keyed by the
experiment. A failure is stored on the snapshot (status `failed`, with the error), so result
pages show it instead of silently showing stale numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import psycopg
from django.db import connection, transaction
from django.utils import timezone

import stats
from experiments import queue, readout_sql
from experiments.mappers import readout_spec
from experiments.models import Experiment, ExperimentMetric, Metric, Phase, ResultSnapshot, Variation
from experiments.readout_sql import AggregateRow, MetricSpec

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock(class, id): the class keeps these locks apart from other users.
LOCK_CLASS = 0x5EAD
STATS_METRIC: dict[str, stats.MetricType] = {"conversion": "binomial", "retention": "binomial", "funnel": "binomial",
                "mean": "mean", "count": "mean", "ratio": "ratio"}
# Warn when more than this share of exposed units saw two variations.
MULTIPLE_EXPOSURE_WARNING = 0.01
# Slices with more distinct values than this keep the largest and merge the rest into "(other)".
MAX_SLICE_VALUES = 20
# A queued readout not started after this long is sent to the broker again.
RESEND_AFTER = timedelta(minutes=2)
OTHER = "(other)"


class ReadoutBusy(Exception):
    """Another readout of the same experiment holds the lock."""


# Queueing ------------------------------------------------------------------------------------


def experiment_refresh(
    *, experiment: Experiment, trigger: str = ResultSnapshot.Trigger.API, requested_by: str = "",
    phase: Phase | None = None,
) -> ResultSnapshot:
    """Queue a readout now; the Celery task is sent once the surrounding transaction commits.

    A readout already queued for the same experiment and phase is returned instead of a new one
    (and sent again when it has waited too long).
    """

    phase = phase or experiment.phases.order_by("-number").first()
    now = timezone.now()
    pending = ResultSnapshot.objects.filter(
        experiment=experiment, phase=phase, status=ResultSnapshot.Status.QUEUED,
        created_at__gte=now - timedelta(minutes=30),
    ).first()
    if pending is not None:
        if pending.created_at < now - RESEND_AFTER:
            # Probably lost (a broker outage): send it again; a second run of a finished
            # snapshot does nothing.
            _enqueue(experiment.pk, pending.pk)
        return pending
    snapshot = ResultSnapshot.objects.create(
        experiment=experiment, phase=phase, trigger=trigger, requested_by=requested_by,
    )
    _enqueue(experiment.pk, snapshot.pk)
    return snapshot


def _enqueue(experiment_id: int, snapshot_id: int) -> None:
    def send() -> None:
        queue.readout_send(experiment_id, snapshot_id)

    # robust: a broker outage must not turn a committed write (a stop, say) into an error;
    # the snapshot stays queued, visibly, and the next refresh sends it again.
    transaction.on_commit(send, robust=True)


def experiments_refresh_running() -> int:
    """Queue a readout of every running experiment (the beat schedule calls this)."""
    count = 0
    for experiment in Experiment.objects.filter(status=Experiment.Status.RUNNING):
        with transaction.atomic():
            experiment_refresh(experiment=experiment, trigger=ResultSnapshot.Trigger.SCHEDULE)
        count += 1
    return count


# Running -------------------------------------------------------------------------------------


def _raw_cursor() -> psycopg.Cursor[Any]:
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    return psycopg.Cursor(raw)


def _relaxed_commit() -> None:
    """Do not wait for the disk at commit: a readout lost in a crash is simply computed again,
    and the flush wait is a good part of a short readout's time."""
    with connection.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")


def _claim(snapshot_id: int | None, experiment_id: int, trigger: str) -> ResultSnapshot | None:
    """Mark the snapshot running (creating one for scheduled runs); None when already done."""
    with transaction.atomic():
        _relaxed_commit()
        if snapshot_id is None:
            experiment = Experiment.objects.get(pk=experiment_id)
            snapshot = ResultSnapshot.objects.create(
                experiment=experiment, phase=experiment.phases.order_by("-number").first(), trigger=trigger,
            )
        else:
            found = ResultSnapshot.objects.select_for_update().filter(pk=snapshot_id).first()
            if found is None or found.status in (
                ResultSnapshot.Status.SUCCESS, ResultSnapshot.Status.FAILED, ResultSnapshot.Status.SKIPPED
            ):
                return None
            snapshot = found
        snapshot.status = ResultSnapshot.Status.RUNNING
        snapshot.attempts += 1
        snapshot.started_at = timezone.now()
        snapshot.save(update_fields=["status", "attempts", "started_at"])
        return snapshot


def readout_mark(
    *, snapshot_id: int, status: str, error: str = "", error_code: str = ""
) -> None:
    """Record how a readout ended when it did not produce results (failed, skipped, requeued)."""
    now = timezone.now()
    snapshot = ResultSnapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None:
        return
    snapshot.status = status
    snapshot.error = error[:4000]
    snapshot.error_code = error_code
    if status != ResultSnapshot.Status.QUEUED:
        snapshot.finished_at = now
        if snapshot.started_at is not None:
            snapshot.duration_ms = int((now - snapshot.started_at).total_seconds() * 1000)
    snapshot.save(update_fields=["status", "error", "error_code", "finished_at", "duration_ms"])


def readout_run(
    *, experiment_id: int, snapshot_id: int | None = None, trigger: str = ResultSnapshot.Trigger.SCHEDULE,
    force_full: bool = False,
) -> ResultSnapshot | None:
    """Compute and store one readout. Idempotent: a finished snapshot is left as it is.

    Raises `ReadoutBusy` when another readout of the experiment is running, and database
    errors as they come (the task retries both); other errors mark the snapshot failed.
    """
    snapshot = _claim(snapshot_id, experiment_id, trigger)
    if snapshot is None:
        return None
    started = time.monotonic()
    try:
        with transaction.atomic(), _raw_cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_CLASS, experiment_id % (2**31)))
            row = cur.fetchone()
            if row is None or not row[0]:
                raise ReadoutBusy(f"Another readout of experiment {experiment_id} is running.")
            _compute(cur, snapshot, force_full=force_full)
            snapshot.status = ResultSnapshot.Status.SUCCESS
            snapshot.finished_at = timezone.now()
            snapshot.duration_ms = int((time.monotonic() - started) * 1000)
            snapshot.error, snapshot.error_code = "", ""
            snapshot.save()
    except (ReadoutBusy, psycopg.OperationalError):
        raise
    except Exception as exc:
        from django.db import OperationalError

        if isinstance(exc, OperationalError):
            raise
        logger.exception("Readout %s of experiment %s failed.", snapshot.pk, experiment_id)
        readout_mark(snapshot_id=snapshot.pk, status=ResultSnapshot.Status.FAILED,
                     error=f"{type(exc).__name__}: {exc}", error_code="readout_error")
        snapshot.refresh_from_db()
    return snapshot


@dataclass(frozen=True, slots=True)
class _MetricRef:
    metric: Metric
    role: str
    spec: MetricSpec


def _compute(cur: psycopg.Cursor[Any], snapshot: ResultSnapshot, *, force_full: bool) -> None:
    experiment = Experiment.objects.select_related("environment").get(pk=snapshot.experiment_id)
    phase = snapshot.phase or experiment.phases.order_by("-number").first()
    if phase is None:
        raise ValueError("The experiment has not started: there is no phase to analyse.")
    links = list(ExperimentMetric.objects.filter(experiment=experiment).select_related("metric"))
    variations = list(Variation.objects.filter(experiment=experiment).order_by("position"))
    spec = readout_spec(experiment, phase, [link.metric for link in links])
    refs = [_MetricRef(link.metric, link.role, m) for link, m in zip(links, spec.metrics, strict=True)]
    analysis_end = phase.ended_at or timezone.now()

    rollup = readout_sql.rollup_refresh(cur, spec, force_full=force_full)
    caps = readout_sql.percentile_caps(cur, spec)
    rows = readout_sql.aggregate(cur, spec, caps=caps, analysis_end=analysis_end)
    analysed = sum(row.units for row in rows)
    readout_sql.rollup_units_record(cur, phase.pk, analysed)
    multiple = readout_sql.multiple_exposures(cur, phase.pk)
    exposed = analysed + multiple

    weights = [float(w) for w in phase.weights] if phase.weights else [v.weight for v in variations]
    result = build_results(
        experiment=experiment, variations=variations, weights=weights, refs=refs, rows=rows, caps=caps,
        slice_attributes=list(spec.slice_attributes),
    )
    snapshot.phase = phase
    snapshot.analysis_end = analysis_end
    snapshot.rollup_mode = rollup.mode
    snapshot.units = result.units
    snapshot.multiple_exposure_units = multiple
    share = multiple / exposed if exposed else None
    snapshot.multiple_exposure_share = share
    snapshot.srm_p_value = _finite(result.srm_p_value)
    snapshot.srm_warning = result.srm_warning
    snapshot.guardrail_status = result.guardrail_status
    snapshot.variations = _clean(result.variations)
    snapshot.metrics = _clean(result.metrics)
    snapshot.slices = _clean(result.slices)
    snapshot.inputs = _clean({"analysis_end": analysis_end.isoformat(), "phase": phase.number, "caps": caps,
                              "rollup": {"mode": rollup.mode, "units_recomputed": rollup.units_recomputed},
                              "metrics": result.inputs})
    warnings = list(result.warnings)
    if share is not None and share > MULTIPLE_EXPOSURE_WARNING:
        warnings.append({"code": "multiple_exposures",
                         "message": f"{multiple} of {exposed} units ({share:.1%}) saw more than one variation; "
                                    "they are left out of the analysis. Check the assignment and exposure logging."})
    snapshot.warnings = warnings
    snapshot.settings = {
        "alpha": experiment.alpha, "difference_type": experiment.difference_type,
        "sequential": experiment.sequential, "sequential_tuning": experiment.sequential_tuning,
        "cuped": experiment.cuped, "cuped_lookback_days": experiment.cuped_lookback_days,
        "correction": experiment.correction, "min_sample_per_arm": experiment.min_sample_per_arm,
        "weights": weights,
    }


# From sums to results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Results:
    units: int
    srm_p_value: float | None
    srm_warning: bool
    guardrail_status: str
    variations: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    slices: list[dict[str, Any]]
    inputs: dict[str, Any]
    warnings: list[dict[str, str]]


def _totals(rows: Sequence[AggregateRow], n_variations: int, metric_index: int, width: int,
            keep: Any = None) -> np.ndarray[Any, Any]:
    """Sum the per-combination sums into one row per variation (NaN where a sum is NULL)."""
    out = np.zeros((n_variations, width))
    missing = np.zeros((n_variations, width), dtype=bool)
    for row in rows:
        if keep is not None and not keep(row):
            continue
        if not 0 <= row.variation < n_variations:
            continue
        values = row.sums[metric_index]
        for j, v in enumerate(values):
            if v is None:
                missing[row.variation, j] = True
            else:
                out[row.variation, j] += v
    out[missing & (out == 0)] = np.nan
    return out


def _variation_data(name: str, kind: str, columns: Sequence[str], values: Sequence[float],
                    covariate: bool) -> stats.VariationData:
    data: dict[str, Any] = {}
    for column, value in zip(columns, values, strict=True):
        data[column] = None if (value is None or (isinstance(value, float) and math.isnan(value))) else float(value)
    users = int(data.pop("users") or 0)
    if users == 0 or not covariate:
        for field in ("covariate_sum", "covariate_sum_squares", "main_covariate_sum_product",
                      "denominator_pre_sum", "denominator_pre_sum_squares", "main_post_denominator_pre_sum_product",
                      "main_pre_denominator_post_sum_product", "main_pre_denominator_pre_sum_product",
                      "denominator_post_denominator_pre_sum_product"):
            data.pop(field, None)
    main_sum = data.pop("main_sum") or 0.0
    return stats.VariationData(name=name, users=users, main_sum=main_sum, **data)


GUARDRAIL_WARNING_CHANCE = 0.2


def _harm(direction: str, comparison: dict[str, Any]) -> str:
    estimate, low, high = comparison.get("estimate"), comparison.get("ci_low"), comparison.get("ci_high")
    if estimate is None:
        return "ok"
    worse = estimate < 0 if direction == Metric.Direction.HIGHER else estimate > 0
    significant = (high is not None and high < 0) if direction == Metric.Direction.HIGHER else (
        low is not None and low > 0)
    if significant:
        return "failing"
    # Trending worse: at least 80% likely to be worse. A point estimate on the wrong side of
    # zero alone would flag half of all harmless changes.
    chance = comparison.get("chance_to_win")
    likely = chance is None or chance <= GUARDRAIL_WARNING_CHANCE
    return "warning" if worse and likely else "ok"


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _clean(value: Any) -> Any:
    """JSON-safe copy: a non-finite number (the engine may give inf for a degenerate slice) becomes null."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _comparison_dict(c: stats.Comparison, direction: str) -> dict[str, Any]:
    chance = c.chance_to_win
    if chance is not None and direction == Metric.Direction.LOWER:
        chance = 1.0 - chance
    return {
        "variation": c.variation, "difference_type": c.difference_type, "estimate": c.estimate,
        "ci_low": c.ci_low, "ci_high": c.ci_high, "p_value": c.p_value, "chance_to_win": chance,
        "cuped_applied": c.cuped_applied, "variance_reduction": c.variance_reduction,
        "sequential": c.sequential, "error": c.error,
    }


def _slice_groups(rows: Sequence[AggregateRow], attributes: Sequence[str]) -> list[tuple[str, str, Any]]:
    """(attribute, value, row filter) for every slice worth showing."""
    groups: list[tuple[str, str, Any]] = []
    for k, attribute in enumerate(attributes):
        sizes: dict[str, float] = {}
        for row in rows:
            value = row.slices[k] if k < len(row.slices) else None
            label = "(none)" if value is None else str(value)
            sizes[label] = sizes.get(label, 0.0) + row.units
        ordered = sorted(sizes, key=lambda v: -sizes[v])
        kept = set(ordered[:MAX_SLICE_VALUES])

        def label_of(row: AggregateRow, k: int = k) -> str:
            value = row.slices[k] if k < len(row.slices) else None
            return "(none)" if value is None else str(value)

        for label in ordered[:MAX_SLICE_VALUES]:
            groups.append((attribute, label, lambda row, label=label, f=label_of: f(row) == label))
        if len(ordered) > MAX_SLICE_VALUES:
            groups.append((attribute, OTHER, lambda row, kept=kept, f=label_of: f(row) not in kept))
    return groups


def analysis_modes(*, cuped: bool) -> dict[str, tuple[bool, bool]]:
    """The overall analyses a snapshot stores, by name: (CUPED, sequential).

    `sequential` follows the experiment's CUPED setting (it is the headline of a sequential
    experiment); with CUPED on, `sequential_unadjusted` is the same test without it.
    """
    modes = {"fixed": (False, False), "cuped": (True, False), "sequential": (cuped, True)}
    if cuped:
        modes["sequential_unadjusted"] = (False, True)
    return modes


def build_results(
    *, experiment: Experiment, variations: Sequence[Variation], weights: Sequence[float],
    refs: Sequence[_MetricRef], rows: Sequence[AggregateRow], caps: dict[str, float | None],
    slice_attributes: Sequence[str],
) -> Results:
    """Turn the per-combination sums into the snapshot's comparisons (all through `stats`)."""
    names = [v.key for v in variations]
    n = len(names)
    units = np.zeros(n, dtype=np.int64)
    for row in rows:
        if 0 <= row.variation < n:
            units[row.variation] += row.units
    total_units = int(units.sum())
    srm = stats.srm_test([int(u) for u in units], list(weights)) if n >= 2 and total_units > 0 else None
    warnings: list[dict[str, str]] = []
    if srm is not None and srm.warning:
        warnings.append({"code": "srm", "message": f"Sample ratio mismatch (p = {srm.p_value:.2g}): units per "
                         "variation do not match the configured weights; do not trust the results until explained."})
    if total_units and int(units.min()) < experiment.min_sample_per_arm:
        warnings.append({"code": "low_sample", "message": f"Fewer than {experiment.min_sample_per_arm} units in "
                         "some variation: results are not yet reliable."})
    if total_units == 0:
        warnings.append({"code": "no_data", "message": "No exposures in this phase yet."})


    def analysis(kind: str, arms: tuple[stats.VariationData, ...], cuped: bool, sequential: bool,
                 difference_type: stats.DifferenceType) -> stats.AnalysisInput:
        return stats.AnalysisInput(
            metric=STATS_METRIC[kind], variations=arms, alpha=experiment.alpha, difference_type=difference_type,
            sequential=sequential, sequential_tuning_parameter=experiment.sequential_tuning, cuped=cuped,
            weights=tuple(float(w) for w in weights),
        )

    modes = analysis_modes(cuped=experiment.cuped)
    headline = "sequential" if experiment.sequential else "cuped" if experiment.cuped else "fixed"
    own_type: stats.DifferenceType = "absolute" if experiment.difference_type == "absolute" else "relative"
    # Every overall view is stored in both difference types, the experiment's own first, so that
    # `mode[0]` stays the experiment's own result for the first treatment.
    types: tuple[stats.DifferenceType, ...] = (own_type, "relative" if own_type == "absolute" else "absolute")

    analyses: list[stats.AnalysisInput] = []
    index: list[tuple[int, str, stats.DifferenceType, int | None]] = []  # (metric, mode, type, slice group)
    inputs: dict[str, Any] = {}
    groups = _slice_groups(rows, slice_attributes) if rows else []
    for i, ref in enumerate(refs):
        kind = ref.metric.kind
        columns = readout_sql.metric_columns(kind)
        covariate = experiment.cuped
        overall = _totals(rows, n, i, len(columns))
        arms = tuple(_variation_data(names[v], kind, columns, overall[v].tolist(), covariate) for v in range(n))
        inputs[ref.metric.key] = {"overall": [_arm_dict(a) for a in arms]}
        if n < 2:
            continue
        for mode, (cuped, sequential) in modes.items():
            cuped_on = cuped and covariate and arms[0].covariate_sum is not None
            for dtype in types:
                analyses.append(analysis(kind, arms, cuped_on, sequential, dtype))
                index.append((i, mode, dtype, None))
        slice_inputs: dict[str, Any] = {}
        # Slices keep one view (the headline analysis in the experiment's difference type): all
        # of them would multiply the largest part of a snapshot.
        for g, (attribute, label, keep) in enumerate(groups):
            part = _totals(rows, n, i, len(columns), keep=keep)
            slice_arms = tuple(
                _variation_data(names[v], kind, columns, part[v].tolist(), covariate) for v in range(n)
            )
            slice_inputs.setdefault(attribute, {})[label] = [_arm_dict(a) for a in slice_arms]
            cuped, sequential = modes[headline]
            cuped_on = cuped and covariate and slice_arms[0].covariate_sum is not None
            analyses.append(analysis(kind, slice_arms, cuped_on, sequential, own_type))
            index.append((i, headline, own_type, g))
        if slice_inputs:
            inputs[ref.metric.key]["slices"] = slice_inputs

    results = stats.analyze_many(analyses) if analyses else []
    metrics: list[dict[str, Any]] = []
    by_metric: dict[int, dict[str, dict[str, stats.AnalysisResult]]] = {}
    slice_results: dict[tuple[int, int], stats.AnalysisResult] = {}
    for (i, mode, dtype, group), res in zip(index, results, strict=True):
        if group is None:
            by_metric.setdefault(i, {}).setdefault(mode, {})[dtype] = res
        else:
            slice_results[(i, group)] = res

    # Correction over the headline comparisons of primary and secondary metrics.
    family: list[tuple[int, int]] = []
    p_values: list[float] = []
    for i, ref in enumerate(refs):
        if ref.role == ExperimentMetric.Role.GUARDRAIL or i not in by_metric:
            continue
        for j, comparison in enumerate(by_metric[i][headline][own_type].comparisons):
            family.append((i, j))
            p_values.append(np.nan if comparison.p_value is None else comparison.p_value)
    adjusted: dict[tuple[int, int], float | None] = {}
    if experiment.correction != Experiment.Correction.NONE and p_values:
        method: stats.CorrectionMethod = "holm" if experiment.correction == Experiment.Correction.HOLM else "bh"
        values = stats.adjust_p_values(np.asarray(p_values), method)
        for key, value in zip(family, values.tolist(), strict=True):
            adjusted[key] = None if math.isnan(value) else float(value)

    guardrail = "ok" if any(r.role == ExperimentMetric.Role.GUARDRAIL for r in refs) else ""
    order = {"ok": 0, "warning": 1, "failing": 2}
    for i, ref in enumerate(refs):
        m = ref.metric
        entry: dict[str, Any] = {
            "key": m.key, "name": m.name or m.key, "kind": m.kind, "role": ref.role, "direction": m.direction,
            "headline": headline, "cap": caps.get(m.key) if m.capping == Metric.Capping.PERCENTILE else (
                m.capping_value if m.capping == Metric.Capping.ABSOLUTE else None),
        }
        modes_res = by_metric.get(i, {})
        base = modes_res.get("fixed", {}).get(own_type)
        if base is not None:
            entry["variations"] = [
                {"key": v.name, "users": v.users, "mean": v.mean, "stddev": v.stddev} for v in base.variations
            ]
        for mode in modes:
            if mode in modes_res:
                entry[mode] = [_comparison_dict(c, m.direction) for dtype in types
                               for c in modes_res[mode][dtype].comparisons]
        own = modes_res.get(headline, {}).get(own_type)
        comparisons: list[dict[str, Any]] = [_comparison_dict(c, m.direction) for c in own.comparisons] if own else []
        for j, doc in enumerate(comparisons):
            low, high = doc.get("ci_low"), doc.get("ci_high")
            significant = low is not None and high is not None and (low > 0 or high < 0)
            if (i, j) in adjusted:
                adj = adjusted[(i, j)]
                doc["p_value_adjusted"] = adj
                significant = adj is not None and adj < experiment.alpha
            doc["significant"] = significant
        entry["comparisons"] = comparisons
        if ref.role == ExperimentMetric.Role.GUARDRAIL:
            status = "ok"
            for doc in comparisons:
                harm = _harm(m.direction, doc)
                if order[harm] > order[status]:
                    status = harm
            entry["guardrail"] = status
            if order[status] > order[guardrail]:
                guardrail = status
        metrics.append(entry)
    if guardrail == "failing":
        warnings.append({"code": "guardrail_failing", "message": "A guardrail metric is significantly worse."})

    slices: list[dict[str, Any]] = []
    for g, (attribute, label, keep) in enumerate(groups):
        part_units = np.zeros(n, dtype=np.int64)
        for row in rows:
            if keep(row) and 0 <= row.variation < n:
                part_units[row.variation] += row.units
        slice_metrics = []
        for i, ref in enumerate(refs):
            part_res = slice_results.get((i, g))
            if part_res is None:
                continue
            slice_metrics.append({
                "key": ref.metric.key,
                "variations": [{"key": v.name, "users": v.users, "mean": v.mean} for v in part_res.variations],
                "comparisons": [_comparison_dict(c, ref.metric.direction) for c in part_res.comparisons],
            })
        slices.append({"attribute": attribute, "value": label, "units": [int(u) for u in part_units],
                       "metrics": slice_metrics})

    variation_docs = [
        {"key": v.key, "name": v.name or v.key, "weight": float(weights[k]) if k < len(weights) else v.weight,
         "units": int(units[k]), "share": (float(units[k]) / total_units) if total_units else None}
        for k, v in enumerate(variations)
    ]
    return Results(
        units=total_units, srm_p_value=srm.p_value if srm is not None else None,
        srm_warning=bool(srm.warning) if srm is not None else False, guardrail_status=guardrail,
        variations=variation_docs, metrics=metrics, slices=slices, inputs=inputs, warnings=warnings,
    )


def _arm_dict(arm: stats.VariationData) -> dict[str, Any]:
    return {f.name: getattr(arm, f.name) for f in dataclasses.fields(arm) if getattr(arm, f.name) is not None}

