"""Experiment lifecycle: validated, in one transaction, audited (the metric catalog is in `catalog`).

An experiment is a draft until `experiment_start` writes its experiment rule onto the flag
(through `flags.services`, which bumps the environment's config version so every serving
process sees it). A weight, coverage or targeting change while it runs starts a new phase.
`experiment_stop` removes the rule and, when a variation is shipped, makes it the flag's
default in the environment.
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
from base.writes import reject_unknown
from config.errors import Conflict, ValidationFailed
from experiments.documents import experiment_document
from experiments.models import Experiment, ExperimentMetric, Metric, Phase, ResultSnapshot, Variation
from experiments.readout_sql import rollup_drop
from experiments.validation import normalize_tags, tags_errors, target_mde_errors
from flags import services as flag_services
from flags.engine import validation
from flags.models import Flag, Rule
from traffic.assignment.allocation import find_overlaps, range_errors
from traffic.models import Holdout, Layer

EXPERIMENT_FIELDS = (
    "name", "hypothesis", "description", "owner", "hash_attribute", "seed", "coverage", "condition", "layer",
    "range_start", "range_end", "holdout", "alpha", "difference_type", "sequential", "sequential_tuning", "cuped",
    "cuped_lookback_days", "correction", "min_sample_per_arm", "slice_attributes", "variations", "metrics",
    "target_mde", "tags",
)
# Fields a running experiment may change; the assignment fields start a new phase.
RUNNING_FIELDS = frozenset({
    "name", "hypothesis", "description", "owner", "alpha", "difference_type", "sequential", "sequential_tuning",
    "cuped", "cuped_lookback_days", "correction", "min_sample_per_arm", "slice_attributes", "metrics",
    "variations", "coverage", "condition", "holdout", "target_mde", "tags",
})
ANALYSIS_FIELDS = frozenset({
    "name", "hypothesis", "description", "owner", "alpha", "difference_type", "sequential", "sequential_tuning",
    "cuped", "cuped_lookback_days", "correction", "min_sample_per_arm", "slice_attributes", "metrics",
    "target_mde", "tags",
})
WEIGHT_TOLERANCE = 1e-6
MAX_SLICE_ATTRIBUTES = 5


# Experiments: validation ---------------------------------------------------------------------


def _check_variations(variations: Any, flag: Flag, errors: Errors) -> None:
    if not isinstance(variations, list):
        add_error(errors, "variations", "Give a list of variations: {key, name, weight}.")
        return
    variant_keys = set(flag.variants.values_list("key", flat=True))
    seen: set[str] = set()
    for i, v in enumerate(variations):
        if not isinstance(v, Mapping) or not isinstance(v.get("key"), str):
            add_error(errors, f"variations[{i}].key", "Each variation needs the key of a variant of the flag.")
            continue
        if v["key"] not in variant_keys:
            add_error(errors, f"variations[{i}].key", f"The flag '{flag.key}' has no variant '{v['key']}'.")
        if v["key"] in seen:
            add_error(errors, f"variations[{i}].key", f"Variation '{v['key']}' appears twice.")
        seen.add(v["key"])
        weight = v.get("weight")
        if not is_number(weight) or not 0 <= weight <= 1:
            add_error(errors, f"variations[{i}].weight", "The weight must be a number between 0 and 1.")


def _check_metric_links(metrics: Any, errors: Errors) -> list[tuple[Metric, str]]:
    if not isinstance(metrics, list):
        add_error(errors, "metrics", "Give a list of {metric, role}.")
        return []
    keys = [m.get("metric") if isinstance(m, Mapping) else None for m in metrics]
    found = {m.key: m for m in Metric.objects.filter(key__in=[k for k in keys if isinstance(k, str)])}
    links: list[tuple[Metric, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(metrics):
        key = keys[i]
        role = item.get("role", ExperimentMetric.Role.SECONDARY) if isinstance(item, Mapping) else None
        metric = found.get(key) if isinstance(key, str) else None
        if metric is None:
            add_error(errors, f"metrics[{i}].metric", f"Unknown metric '{key}'.")
            continue
        if role not in ExperimentMetric.Role.values:
            add_error(errors, f"metrics[{i}].role", f"Use one of {', '.join(ExperimentMetric.Role.values)}.")
            continue
        if metric.key in seen:
            add_error(errors, f"metrics[{i}].metric", f"Metric '{metric.key}' appears twice.")
            continue
        seen.add(metric.key)
        links.append((metric, str(role)))
    return links


def _check_settings(data: Mapping[str, Any], errors: Errors) -> None:
    if "coverage" in data and (not is_number(data["coverage"]) or not 0 <= data["coverage"] <= 1):
        add_error(errors, "coverage", "Coverage must be a number between 0 and 1.")
    if "condition" in data:
        errors.update(validation.check_condition(data["condition"] or {}))
    if "hash_attribute" in data and (not isinstance(data["hash_attribute"], str) or not data["hash_attribute"]):
        add_error(errors, "hash_attribute", "Name the attribute units are hashed by (for example 'id').")
    if "alpha" in data and (not is_number(data["alpha"]) or not 0.001 <= data["alpha"] <= 0.5):
        add_error(errors, "alpha", "Alpha must be between 0.001 and 0.5.")
    if "difference_type" in data and data["difference_type"] not in Experiment.DifferenceType.values:
        add_error(errors, "difference_type", f"Use one of {', '.join(Experiment.DifferenceType.values)}.")
    if "correction" in data and data["correction"] not in Experiment.Correction.values:
        add_error(errors, "correction", f"Use one of {', '.join(Experiment.Correction.values)}.")
    if "sequential_tuning" in data and (not is_number(data["sequential_tuning"]) or data["sequential_tuning"] <= 0):
        add_error(errors, "sequential_tuning", "The tuning parameter must be a positive number of units.")
    lookback = data.get("cuped_lookback_days", 14)
    if not isinstance(lookback, int) or isinstance(lookback, bool) or not 1 <= lookback <= 90:
        add_error(errors, "cuped_lookback_days", "The lookback must be 1 to 90 days.")
    minimum = data.get("min_sample_per_arm", 0)
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0:
        add_error(errors, "min_sample_per_arm", "Give a non-negative number of units.")
    if "slice_attributes" in data:
        attrs = data["slice_attributes"]
        if (not isinstance(attrs, list) or len(attrs) > MAX_SLICE_ATTRIBUTES
                or not all(isinstance(a, str) and 0 < len(a) <= 100 for a in attrs)
                or len(set(attrs)) != len(attrs)):
            add_error(errors, "slice_attributes", f"Give up to {MAX_SLICE_ATTRIBUTES} different attribute names.")
    if "target_mde" in data:
        for message in target_mde_errors(data["target_mde"]):
            add_error(errors, "target_mde", message)
    if "tags" in data:
        for message in tags_errors(data["tags"]):
            add_error(errors, "tags", message)
    start, end = data.get("range_start"), data.get("range_end")
    if data.get("layer") is not None:
        if not is_number(start) or not is_number(end):
            add_error(errors, "range_start",
                      "An experiment in a layer needs the range it owns: start and end in [0, 1].")
        else:
            for message in range_errors((float(start), float(end))):
                add_error(errors, "range_start", message)
            if end - start <= 0:
                add_error(errors, "range_end", "The range must not be empty.")


def _resolve(model: type[Layer] | type[Holdout], key: Any, field: str, errors: Errors) -> Any:
    if key is None or key == "":
        return None
    if isinstance(key, model):
        return key
    found = model.objects.filter(key=key).first() if isinstance(key, str) else None
    if found is None:
        add_error(errors, field, f"Unknown {field} '{key}'.")
    return found


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
        "environment", "flag", "layer", "holdout").get(pk=experiment.pk)


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
    `layer` and `holdout` are keys. Nothing is served until `experiment_start`.
    """
    reject_unknown(fields, EXPERIMENT_FIELDS, what="experiment")
    if "tags" in fields:
        fields["tags"] = normalize_tags(fields["tags"])
    errors = check_key(key)
    variation_list = [dict(v) for v in variations or []]
    _check_variations(variation_list, flag, errors)
    links = _check_metric_links([dict(m) for m in metrics or []], errors)
    for i, (metric, _) in enumerate(links):
        if metric.archived_at is not None:
            add_error(errors, f"metrics[{i}].metric", f"Metric '{metric.key}' is archived.")
    _check_settings(fields, errors)
    layer = _resolve(Layer, fields.pop("layer", None), "layer", errors)
    holdout = _resolve(Holdout, fields.pop("holdout", None), "holdout", errors)
    raise_if(errors, "The experiment is not valid.")
    if Experiment.objects.filter(key=key).exists():
        raise Conflict(f"Experiment '{key}' already exists.", code="duplicate_key")
    if fields.get("condition") is None:
        fields.pop("condition", None)
    try:
        experiment = Experiment.objects.create(
            key=key, flag=flag, environment=environment, layer=layer, holdout=holdout, **fields
        )
    except IntegrityError as exc:
        raise Conflict(f"Experiment '{key}' already exists.", code="duplicate_key") from exc
    _apply_links(experiment, variation_list, links)
    _audit(actor, "experiment.create", experiment)
    return experiment


def _assignment_changed(experiment: Experiment, changes: Mapping[str, Any]) -> bool:
    if "coverage" in changes and float(changes["coverage"]) != experiment.coverage:
        return True
    if "condition" in changes and (changes["condition"] or {}) != (experiment.condition or {}):
        return True
    if "holdout" in changes and changes["holdout"] != experiment.holdout:
        return True
    if "variations" in changes:
        current = [v.weight for v in experiment.variations.all()]
        return [float(v["weight"]) for v in changes["variations"]] != current
    return False


@transaction.atomic
def experiment_update(*, actor: Actor, experiment: Experiment, **changes: Any) -> Experiment:
    """Change a draft freely; on a running experiment, a weight, coverage, targeting or holdout
    change starts a new phase (units are re-counted from then on) and updates the flag's rule.
    Stopped and archived experiments only take descriptive and analysis changes."""
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
        _check_variations(variation_list, flag, errors)
        if status == Experiment.Status.RUNNING and not errors:
            current = [v.key for v in experiment.variations.all()]
            if [v["key"] for v in variation_list] != current:
                add_error(errors, "variations",
                          "A running experiment keeps its variations; only weights and names change.")
            elif abs(sum(float(v["weight"]) for v in variation_list) - 1.0) > WEIGHT_TOLERANCE:
                add_error(errors, "variations", "Weights must sum to 1.")
    links: list[tuple[Metric, str]] | None = None
    if "metrics" in changes:
        links = _check_metric_links([dict(m) for m in changes["metrics"] or []], errors)
        if status == Experiment.Status.RUNNING and not any(role == "primary" for _, role in links):
            add_error(errors, "metrics", "A running experiment needs a primary metric.")
    merged = {f: getattr(experiment, f) for f in ("cuped_lookback_days", "min_sample_per_arm")}
    merged.update({k: v for k, v in changes.items() if k not in ("variations", "metrics")})
    merged["layer"] = changes.get("layer", experiment.layer)
    merged.setdefault("range_start", experiment.range_start)
    merged.setdefault("range_end", experiment.range_end)
    _check_settings(merged, errors)
    if "layer" in changes:
        changes["layer"] = _resolve(Layer, changes["layer"], "layer", errors)
    if "holdout" in changes:
        changes["holdout"] = _resolve(Holdout, changes["holdout"], "holdout", errors)
    raise_if(errors, "The experiment is not valid.")
    new_phase = status == Experiment.Status.RUNNING and _assignment_changed(
        experiment, {**changes, **({"variations": variation_list} if variation_list is not None else {})}
    )
    changes.pop("variations", None)
    changes.pop("metrics", None)
    if "condition" in changes and changes["condition"] is None:
        changes["condition"] = {}
    for field, value in changes.items():
        setattr(experiment, field, value)
    experiment.flag = flag
    experiment.environment = environment
    experiment.save()
    _apply_links(experiment, variation_list, links)
    if new_phase:
        _next_phase(actor, experiment, reason="Weights, coverage, targeting or holdout changed.")
    environments_bump(environment_ids=[experiment.environment_id])
    _audit(actor, "experiment.update", experiment, before)
    return experiment


def _rule_fields(experiment: Experiment, phase_number: int) -> dict[str, Any]:
    variations = list(experiment.variations.all())
    fields: dict[str, Any] = {
        "kind": Rule.Kind.EXPERIMENT,
        "description": f"Experiment {experiment.key}",
        "condition": experiment.condition or {},
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
        condition=experiment.condition or {}, reason=reason,
    )
    rule = Rule.objects.filter(uid=experiment.rule_uid).first() if experiment.rule_uid else None
    if rule is not None:
        fields = _rule_fields(experiment, number)
        fields.pop("kind")
        flag_services.flag_rule_update(actor=actor, rule=rule, **fields)
    return phase


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
    conflicts = _layer_conflicts(experiment)
    if conflicts:
        add_error(errors, "range_start", "The layer range overlaps: " + "; ".join(conflicts) + ".")
    return errors


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


@transaction.atomic
def experiment_stop(
    *, actor: Actor, experiment: Experiment, decision: str, variation: str | None = None, note: str = ""
) -> Experiment:
    """Stop a running experiment with a decision.

    `ship`: the flag serves `variation` to everyone in the environment (it becomes the
    default variant); `rollback`: the flag serves what it served before the experiment. The
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
    rule = Rule.objects.filter(uid=experiment.rule_uid).first() if experiment.rule_uid else None
    if rule is not None:
        flag_services.flag_rule_delete(actor=actor, rule=rule)
    if decision == Experiment.Decision.SHIP:
        assert variation is not None
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
    from experiments.readout_jobs import experiment_refresh

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
