"""Experiment lifecycle: validated (`checks`), in one transaction, audited (the metric catalog is
in `catalog`).

An experiment is a draft until `experiment_start` writes its experiment rule onto the flag
(through `flags.services`, which bumps the environment's config version so every serving
process sees it). While it runs, a coverage raise continues the phase and a weight, targeting
or holdout change (or a lower coverage) starts a new one (`experiments.phases`).
`experiment_stop` removes the rule and, when a variation is shipped, makes it the flag's
default in the environment. `experiment_readout_request` queues a readout someone asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.services import audit_record
from audit.types import Actor
from base.checks import add_error, is_number, raise_if
from base.environments import environments_bump
from base.keys import Errors, check_key
from base.models import Environment
from base.reviews import reviewable
from base.writes import reject_unknown
from config.errors import Conflict, ValidationFailed
from experiments.checks import (
    WEIGHT_TOLERANCE,
    check_holdout_active,
    check_metric_links,
    check_settings,
    check_variations,
    resolve_key,
)
from experiments.documents import experiment_document
from experiments.holdouts import holdout_keep_before_ship
from experiments.models import (
    DataSource,
    Experiment,
    ExperimentMetric,
    Metric,
    Phase,
    RampStep,
    ResultSnapshot,
    Variation,
)
from experiments.phases import Assignment, phase_change
from experiments.project import project_engine_default
from experiments.readout_jobs import experiment_refresh
from experiments.readout_sql import rollup_drop
from experiments.reviews import experiment_target, of_experiment, of_running_experiment
from experiments.selectors import phase_get
from experiments.validation import normalize_tags
from flags import services as flag_services
from flags.models import Flag, Rule
from traffic.assignment.allocation import find_overlaps
from traffic.models import Holdout, Layer

EXPERIMENT_FIELDS = (
    "name", "hypothesis", "description", "owner", "hash_attribute", "seed", "coverage", "condition", "segments",
    "layer", "range_start", "range_end", "holdout", "alpha", "difference_type", "sequential", "sequential_tuning",
    "cuped", "cuped_lookback_days", "correction", "min_sample_per_arm", "slice_attributes", "variations", "metrics",
    "target_mde", "tags", "data_source", "stats_engine", "prior_enabled", "prior_mean", "prior_stddev",
)
# The analysis settings of the statistics engine: any experiment may change them (a readout
# reads them when it runs).
ENGINE_FIELDS = frozenset({"stats_engine", "prior_enabled", "prior_mean", "prior_stddev"})
# Fields a running experiment may change; the assignment fields start a new phase.
RUNNING_FIELDS = frozenset({
    "name", "hypothesis", "description", "owner", "alpha", "difference_type", "sequential", "sequential_tuning",
    "cuped", "cuped_lookback_days", "correction", "min_sample_per_arm", "slice_attributes", "metrics",
    "variations", "coverage", "condition", "segments", "holdout", "target_mde", "tags", "data_source",
}) | ENGINE_FIELDS
ANALYSIS_FIELDS = frozenset({
    "name", "hypothesis", "description", "owner", "alpha", "difference_type", "sequential", "sequential_tuning",
    "cuped", "cuped_lookback_days", "correction", "min_sample_per_arm", "slice_attributes", "metrics",
    "target_mde", "tags", "data_source",
}) | ENGINE_FIELDS


def _apply_links(experiment: Experiment, variations: Sequence[Mapping[str, Any]] | None,
                 links: list[tuple[Metric, str]] | None) -> None:
    if variations is not None:
        experiment.variations.all().delete()
        Variation.objects.bulk_create(
            Variation(experiment=experiment, key=v["key"], name=str(v.get("name") or ""), weight=float(v["weight"]),
                      position=i)
            for i, v in enumerate(variations)
        )
    if links is not None:
        experiment.experiment_metrics.all().delete()
        ExperimentMetric.objects.bulk_create(
            ExperimentMetric(experiment=experiment, metric=metric, role=role, position=i)
            for i, (metric, role) in enumerate(links)
        )


def _locked(experiment: Experiment) -> Experiment:
    return Experiment.objects.select_for_update(of=("self",)).select_related(
        "environment", "flag", "layer", "holdout", "data_source").get(pk=experiment.pk)


def _audit(actor: Actor, action: str, experiment: Experiment, before: Any = None) -> None:
    audit_record(actor=actor, action=action, object_type="experiment", object_key=experiment.key,
                 before=before, after=experiment_document(experiment), environment=experiment.environment.key)


# Experiments: writes -------------------------------------------------------------------------


@transaction.atomic
def experiment_create(
    *,
    actor: Actor,
    key: str,
    flag: Flag,
    environment: Environment,
    variations: Sequence[Mapping[str, Any]] | None = None,
    metrics: Sequence[Mapping[str, Any]] | None = None,
    **fields: Any,
) -> Experiment:
    """Create a draft experiment on a flag in one environment.

    `variations` are `{key, name, weight}` with keys among the flag's variants (the first is
    the control); `metrics` are `{metric: key, role: primary | secondary | guardrail}`;
    `layer` and `holdout` are keys. Without `stats_engine` the experiment takes the project's
    default engine (`experiments.project`). Nothing is served until `experiment_start`.
    """
    reject_unknown(fields, EXPERIMENT_FIELDS, what="experiment")
    if not fields.get("stats_engine"):
        fields["stats_engine"] = project_engine_default()
    if "tags" in fields:
        fields["tags"] = normalize_tags(fields["tags"])
    errors = check_key(key)
    variation_list = [dict(v) for v in variations or []]
    check_variations(variation_list, flag, errors)
    links = check_metric_links([dict(m) for m in metrics or []], errors)
    for i, (metric, _) in enumerate(links):
        if metric.archived_at is not None:
            add_error(errors, f"metrics[{i}].metric", f"Metric '{metric.key}' is archived.")
    check_settings(fields, errors)
    layer = resolve_key(Layer, fields.pop("layer", None), "layer", errors)
    holdout = resolve_key(Holdout, fields.pop("holdout", None), "holdout", errors)
    check_holdout_active(holdout, errors)
    if "data_source" in fields:
        fields["data_source"] = resolve_key(DataSource, fields["data_source"], "data_source", errors)
    raise_if(errors, "The experiment is not valid.")
    if Experiment.objects.filter(key=key).exists():
        raise Conflict(f"Experiment '{key}' already exists.", code="duplicate_key")
    for field in ("condition", "segments"):
        if fields.get(field) is None:
            fields.pop(field, None)
    try:
        experiment = Experiment.objects.create(
            key=key, flag=flag, environment=environment, layer=layer, holdout=holdout, **fields
        )
    except IntegrityError as exc:
        raise Conflict(f"Experiment '{key}' already exists.", code="duplicate_key") from exc
    _apply_links(experiment, variation_list, links)
    _audit(actor, "experiment.create", experiment)
    return experiment


def assignment_of(experiment: Experiment) -> Assignment:
    """The experiment's assignment as it is stored."""
    return Assignment(
        coverage=float(experiment.coverage), weights=tuple(float(v.weight) for v in experiment.variations.all()),
        condition=dict(experiment.condition or {}), segments=tuple(str(s) for s in experiment.segments or ()),
        holdout=experiment.holdout.key if experiment.holdout is not None else "",
    )


def assignment_after(experiment: Experiment, changes: Mapping[str, Any]) -> Assignment:
    """The assignment once `changes` (fields as `experiment_update` takes them, the holdout as a
    row or a key) are applied."""
    current = assignment_of(experiment)
    holdout = changes.get("holdout", experiment.holdout)
    holdout_key = holdout.key if isinstance(holdout, Holdout) else str(holdout or "")
    weights = current.weights
    if changes.get("variations") is not None:
        weights = tuple(float(v["weight"]) for v in changes["variations"])
    return Assignment(
        coverage=float(changes["coverage"]) if changes.get("coverage") is not None else current.coverage,
        weights=weights,
        condition=dict(changes["condition"] or {}) if "condition" in changes else current.condition,
        segments=tuple(str(s) for s in changes["segments"] or ()) if "segments" in changes else current.segments,
        holdout=holdout_key if "holdout" in changes else current.holdout,
    )


@reviewable("experiment.update", label="Change running experiment", target=experiment_target,
            refs={"experiment": "experiment"}, environments=of_running_experiment)
@transaction.atomic
def experiment_update(*, actor: Actor, experiment: Experiment, audit_action: str = "experiment.update",
                      **changes: Any) -> Experiment:
    """Change a draft freely. On a running experiment a higher coverage continues the phase
    (units already in keep their variation) and a lower one, or a weight, targeting or holdout
    change, starts a new phase (units are re-counted from then on), as `experiments.phases`
    decides; either way the flag's rule follows. Stopped and archived experiments only take
    descriptive and analysis changes."""
    allowed = (*EXPERIMENT_FIELDS, "flag", "environment")
    reject_unknown(changes, allowed, what="experiment")
    if "tags" in changes:
        changes["tags"] = normalize_tags(changes["tags"])
    experiment = _locked(experiment)
    before = experiment_document(experiment)
    status = experiment.status
    if status == Experiment.Status.RUNNING:
        refused = set(changes) - RUNNING_FIELDS
    elif status == Experiment.Status.DRAFT:
        refused = set()
    else:
        refused = set(changes) - ANALYSIS_FIELDS
    if refused:
        raise Conflict(
            f"A {status} experiment cannot change these fields.", code="experiment_locked",
            details={f: [f"Cannot be changed while the experiment is {status}."] for f in sorted(refused)},
        )
    errors: Errors = {}
    flag = changes.pop("flag", experiment.flag)
    environment = changes.pop("environment", experiment.environment)
    variation_list: list[dict[str, Any]] | None = None
    if "variations" in changes:
        variation_list = [dict(v) for v in changes["variations"] or []]
        check_variations(variation_list, flag, errors)
        if status == Experiment.Status.RUNNING and not errors:
            current = [v.key for v in experiment.variations.all()]
            if [v["key"] for v in variation_list] != current:
                add_error(errors, "variations",
                          "A running experiment keeps its variations; only weights and names change.")
            elif abs(sum(float(v["weight"]) for v in variation_list) - 1.0) > WEIGHT_TOLERANCE:
                add_error(errors, "variations", "Weights must sum to 1.")
    links: list[tuple[Metric, str]] | None = None
    if "metrics" in changes:
        links = check_metric_links([dict(m) for m in changes["metrics"] or []], errors)
        if status == Experiment.Status.RUNNING and not any(role == "primary" for _, role in links):
            add_error(errors, "metrics", "A running experiment needs a primary metric.")
    merged = {f: getattr(experiment, f)
              for f in ("cuped_lookback_days", "min_sample_per_arm", "stats_engine", "sequential", "correction")}
    merged.update({k: v for k, v in changes.items() if k not in ("variations", "metrics")})
    merged["layer"] = changes.get("layer", experiment.layer)
    merged.setdefault("range_start", experiment.range_start)
    merged.setdefault("range_end", experiment.range_end)
    check_settings(merged, errors)
    if "layer" in changes:
        changes["layer"] = resolve_key(Layer, changes["layer"], "layer", errors)
    if "holdout" in changes:
        changes["holdout"] = resolve_key(Holdout, changes["holdout"], "holdout", errors)
        if changes["holdout"] != experiment.holdout:
            check_holdout_active(changes["holdout"], errors)
    if "data_source" in changes:
        changes["data_source"] = resolve_key(DataSource, changes["data_source"], "data_source", errors)
    raise_if(errors, "The experiment is not valid.")
    change = phase_change(assignment_of(experiment), assignment_after(
        experiment, {**changes, **({"variations": variation_list} if variation_list is not None else {})},
    )) if status == Experiment.Status.RUNNING else None
    changes.pop("variations", None)
    changes.pop("metrics", None)
    if "condition" in changes and changes["condition"] is None:
        changes["condition"] = {}
    if "segments" in changes:
        changes["segments"] = list(changes["segments"] or [])
    for field, value in changes.items():
        setattr(experiment, field, value)
    experiment.flag = flag
    experiment.environment = environment
    experiment.save()
    _apply_links(experiment, variation_list, links)
    if change is not None and change.new_phase:
        _next_phase(actor, experiment, reason=change.phase_reason)
    elif change is not None and change.coverage_raised:
        _continue_phase(actor, experiment)
    environments_bump(environment_ids=[experiment.environment_id])
    _audit(actor, audit_action, experiment, before)
    return experiment


def _rule_fields(experiment: Experiment, phase_number: int) -> dict[str, Any]:
    variations = list(experiment.variations.all())
    fields: dict[str, Any] = {
        "kind": Rule.Kind.EXPERIMENT,
        "description": f"Experiment {experiment.key}",
        "condition": experiment.condition or {},
        "segments": list(experiment.segments or []),
        "coverage": experiment.coverage,
        "hash_attribute": experiment.hash_attribute,
        "seed": experiment.seed or experiment.key,
        "variations": [v.key for v in variations],
        "weights": [v.weight for v in variations],
        "experiment_key": experiment.key,
        "phase": str(phase_number),
        "namespace": None,
    }
    if experiment.layer is not None:
        fields["namespace"] = [experiment.layer.key, experiment.range_start, experiment.range_end]
    # Units in the holdout's share never enter the experiment (flags.mappers compiles it).
    fields["holdout"] = experiment.holdout.key if experiment.holdout is not None else ""
    return fields


def _next_phase(actor: Actor, experiment: Experiment, *, reason: str) -> Phase:
    now = timezone.now()
    current = experiment.phases.filter(ended_at__isnull=True).order_by("-number").first()
    number = 1
    if current is not None:
        current.ended_at = now
        current.save(update_fields=["ended_at"])
        number = current.number + 1
    phase = Phase.objects.create(
        experiment=experiment, number=number, started_at=now,
        weights=[v.weight for v in experiment.variations.all()], coverage=experiment.coverage,
        condition=experiment.condition or {}, segments=list(experiment.segments or []), reason=reason,
    )
    rule = Rule.objects.filter(uid=experiment.rule_uid).first() if experiment.rule_uid else None
    if rule is not None:
        fields = _rule_fields(experiment, number)
        fields.pop("kind")
        flag_services.flag_rule_update(actor=actor, rule=rule, **fields)
    return phase


def _continue_phase(actor: Actor, experiment: Experiment) -> None:
    """A coverage raise: the open phase and the flag's rule take the new coverage, same phase."""
    phase = experiment.phases.filter(ended_at__isnull=True).order_by("-number").first()
    if phase is not None:
        phase.coverage = experiment.coverage
        phase.save(update_fields=["coverage"])
    rule = Rule.objects.filter(uid=experiment.rule_uid).first() if experiment.rule_uid else None
    if rule is not None:
        flag_services.flag_rule_update(actor=actor, rule=rule, coverage=experiment.coverage)


def _layer_conflicts(experiment: Experiment) -> list[str]:
    """Running experiments (or experiment rules) of the same layer and environment whose range
    overlaps this experiment's."""
    if experiment.layer is None or experiment.range_start is None or experiment.range_end is None:
        return []
    mine = f"experiment:{experiment.key}"
    ranges: list[tuple[str, tuple[float, float]]] = [(mine, (experiment.range_start, experiment.range_end))]
    others = Experiment.objects.filter(
        layer=experiment.layer, environment=experiment.environment, status=Experiment.Status.RUNNING,
    ).exclude(pk=experiment.pk)
    running_keys = set()
    for other in others:
        running_keys.add(other.key)
        if other.range_start is not None and other.range_end is not None:
            ranges.append((f"experiment:{other.key}", (other.range_start, other.range_end)))
    rules = Rule.objects.filter(state__environment=experiment.environment, enabled=True, namespace__isnull=False)
    for rule in rules:
        ns = rule.namespace
        if (isinstance(ns, list) and len(ns) == 3 and ns[0] == experiment.layer.key
                and rule.experiment_key != experiment.key and rule.experiment_key not in running_keys
                and is_number(ns[1]) and is_number(ns[2])):
            ranges.append((f"rule:{rule.uid}", (float(ns[1]), float(ns[2]))))
    names = []
    for overlap in find_overlaps(ranges):
        if mine in (overlap.first, overlap.second):
            owner = overlap.second if overlap.first == mine else overlap.first
            names.append(f"{owner.split(':', 1)[1]} [{overlap.start:g}, {overlap.end:g})")
    return names


def experiment_start_problems(*, experiment: Experiment) -> Errors:
    """Why the experiment cannot start yet (empty when it can); shown to PMs before starting."""
    errors: Errors = {}
    if experiment.status != Experiment.Status.DRAFT:
        add_error(errors, "status", f"Only a draft can start; this experiment is {experiment.status}.")
    variations = list(experiment.variations.all())
    if len(variations) < 2:
        add_error(errors, "variations", "An experiment needs at least two variations.")
    total = sum(v.weight for v in variations)
    if variations and abs(total - 1.0) > WEIGHT_TOLERANCE:
        add_error(errors, "variations", f"Weights must sum to 1 (they sum to {total:.6g}).")
    variant_keys = set(experiment.flag.variants.values_list("key", flat=True))
    for v in variations:
        if v.key not in variant_keys:
            add_error(errors, "variations", f"The flag has no variant '{v.key}' any more.")
    links = list(experiment.experiment_metrics.select_related("metric"))
    if not any(link.role == ExperimentMetric.Role.PRIMARY for link in links):
        add_error(errors, "metrics", "Pick a primary metric.")
    for link in links:
        if link.metric.archived_at is not None:
            add_error(errors, "metrics", f"Metric '{link.metric.key}' is archived.")
    if experiment.flag.archived_at is not None:
        add_error(errors, "flag", f"The flag '{experiment.flag.key}' is archived.")
    if experiment.holdout is not None and experiment.holdout.ended_at is not None:
        add_error(errors, "holdout", f"Holdout '{experiment.holdout.key}' has ended; pick another or none.")
    conflicts = _layer_conflicts(experiment)
    if conflicts:
        add_error(errors, "range_start", "The layer range overlaps: " + "; ".join(conflicts) + ".")
    return errors


@reviewable("experiment.start", label="Start experiment", target=experiment_target,
            refs={"experiment": "experiment"}, environments=of_experiment)
@transaction.atomic
def experiment_start(*, actor: Actor, experiment: Experiment) -> Experiment:
    """Validate, open phase 1 and write the experiment rule onto the flag."""
    experiment = _locked(experiment)
    before = experiment_document(experiment)
    problems = experiment_start_problems(experiment=experiment)
    if problems:
        code = "experiment_not_draft" if "status" in problems else "experiment_not_ready"
        raise ValidationFailed("The experiment cannot start yet.", code=code, details=problems)
    experiment.status = Experiment.Status.RUNNING
    experiment.started_at = timezone.now()
    phase = _next_phase(actor, experiment, reason="Started.")
    rule = flag_services.flag_rule_create(
        actor=actor, flag=experiment.flag, environment=experiment.environment, **_rule_fields(experiment, phase.number)
    )
    experiment.rule_uid = rule.uid
    experiment.save()
    _audit(actor, "experiment.start", experiment, before)
    return experiment


@reviewable("experiment.stop", label="Stop experiment", target=experiment_target,
            refs={"experiment": "experiment"}, environments=of_experiment)
@transaction.atomic
def experiment_stop(
    *, actor: Actor, experiment: Experiment, decision: str, variation: str | None = None, note: str = ""
) -> Experiment:
    """Stop a running experiment with a decision.

    `ship`: the flag serves `variation` to everyone in the environment (it becomes the
    default variant), except the units of an active holdout in scope, who keep the value from
    before (`experiments.holdouts`); `rollback`: the flag serves what it served before the experiment. The
    experiment rule is removed either way, and a final readout is queued.
    """
    experiment = _locked(experiment)
    before = experiment_document(experiment)
    if experiment.status != Experiment.Status.RUNNING:
        raise Conflict(f"Only a running experiment can stop; this one is {experiment.status}.",
                       code="experiment_not_running")
    keys = [v.key for v in experiment.variations.all()]
    if decision not in (Experiment.Decision.SHIP, Experiment.Decision.ROLLBACK):
        raise ValidationFailed("Unknown decision.", details={"decision": ["Use 'ship' or 'rollback'."]})
    if decision == Experiment.Decision.SHIP and variation not in keys:
        raise ValidationFailed("Name the variation to ship.",
                               details={"variation": [f"Use one of {', '.join(keys)}."]})
    now = timezone.now()
    experiment.phases.filter(ended_at__isnull=True).update(ended_at=now)
    experiment.ramp_steps.filter(status=RampStep.Status.PLANNED).update(
        status=RampStep.Status.CANCELLED, note="The experiment stopped.")
    rule = Rule.objects.filter(uid=experiment.rule_uid).first() if experiment.rule_uid else None
    if rule is not None:
        flag_services.flag_rule_delete(actor=actor, rule=rule)
    if decision == Experiment.Decision.SHIP:
        assert variation is not None
        # An active holdout in scope keeps its units on the value from before.
        holdout_keep_before_ship(actor=actor, experiment=experiment, variation=variation)
        flag_services.flag_state_update(
            actor=actor, flag=experiment.flag, environment=experiment.environment, default_variant=variation
        )
    experiment.status = Experiment.Status.STOPPED
    experiment.stopped_at = now
    experiment.decision = decision
    experiment.shipped_variation = variation if decision == Experiment.Decision.SHIP and variation else ""
    experiment.decision_note = note
    experiment.rule_uid = ""
    experiment.save()
    environments_bump(environment_ids=[experiment.environment_id])
    _audit(actor, "experiment.stop", experiment, before)
    experiment_refresh(experiment=experiment, trigger=ResultSnapshot.Trigger.STOP, requested_by=actor.label)
    return experiment


@transaction.atomic
def experiment_archive(*, actor: Actor, experiment: Experiment) -> Experiment:
    """Archive a stopped experiment (or abandon a draft); its results stay readable."""
    experiment = _locked(experiment)
    before = experiment_document(experiment)
    if experiment.status not in (Experiment.Status.DRAFT, Experiment.Status.STOPPED):
        raise Conflict(f"Stop the experiment before archiving it; it is {experiment.status}.",
                       code="experiment_running")
    experiment.status = Experiment.Status.ARCHIVED
    experiment.archived_at = timezone.now()
    experiment.save()
    # The per-unit rollups are derived data: free the space (snapshots keep the results).
    with connection.cursor() as cur:
        rollup_drop(cur.cursor, list(experiment.phases.values_list("pk", flat=True)))
    environments_bump(environment_ids=[experiment.environment_id])
    _audit(actor, "experiment.archive", experiment, before)
    return experiment


@transaction.atomic
def experiment_readout_request(
    *, actor: Actor, experiment: Experiment, trigger: str = ResultSnapshot.Trigger.API, phase_number: int | None = None
) -> ResultSnapshot:
    """Queue a readout now of the current phase (or of phase `phase_number`), for a person who
    asked; refused before the experiment has started, when there is nothing to read out."""
    phase = phase_get(experiment=experiment, number=phase_number)
    if phase is None:
        raise ValidationFailed("The experiment has not started: there is nothing to read out yet.",
                               code="experiment_not_started")
    return experiment_refresh(experiment=experiment, trigger=trigger, requested_by=actor.label, phase=phase)
