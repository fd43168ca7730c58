"""The guided experiment creation: one question at a time, a review, then create (and start).

Answers are kept in the session between steps as plain JSON; nothing is written until the
review step, where `experiments.launch` creates the flag (when asked for), the draft
experiment and, with "create and start", starts it, in one transaction. The services validate
everything again and audit every write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from base.models import Environment
from base.permissions import Action
from config.errors import ApplicationError
from experiments import services
from experiments.models import DataSource, Experiment, Metric
from experiments.project import project_engine_default
from experiments.validation import normalize_tags, tags_errors
from flags import selectors as flag_selectors
from flags.engine.builder import condition_warnings
from flags.engine.describe import describe_condition
from flags.models import Flag, FlagState
from pages.access import can, page_actor, permission_required
from pages.experiments.views import page_context
from pages.forms import ConditionField, parse_weights, place_service_errors, segments_field, targeting_choices
from pages.presentation.formatting import metric_title
from pages.presentation.planning import Plan, PlanInput, plan_experiment

SESSION_KEY = "experiment_wizard"
STEPS = (
    ("basics", "Hypothesis"),
    ("flag", "Flag"),
    ("split", "Variations and split"),
    ("metrics", "Metrics and analysis"),
    ("power", "Expected effect"),
    ("review", "Review"),
)
STEP_KEYS = tuple(k for k, _ in STEPS)
BINARY_KINDS = ("conversion", "retention", "funnel")


class BasicsForm(forms.Form):
    key = forms.RegexField(
        regex=r"^[A-Za-z0-9._-]{1,100}$",
        help_text="A short id used in URLs, the SDK and exports, e.g. checkout-button-color.",
        error_messages={"invalid": "Use letters, digits, dots, underscores and hyphens."},
    )
    name = forms.CharField(required=False, max_length=200)
    hypothesis = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="We believe that <change> will <move which metric, how much> because <why>.",
    )
    owner = forms.CharField(required=False, max_length=150, help_text="Who decides when it ends.")
    tags = forms.CharField(
        required=False, help_text="Comma-separated words to find it by later, e.g. checkout, q3-growth.",
    )
    environment = forms.ModelChoiceField(queryset=Environment.objects.all(), to_field_name="key", empty_label=None)

    def clean_tags(self) -> list[str]:
        tags = normalize_tags([t for t in str(self.cleaned_data.get("tags") or "").split(",") if t.strip()])
        problems = tags_errors(tags)
        if problems:
            raise forms.ValidationError(problems)
        return list(tags)

    def clean_key(self) -> str:
        key = str(self.cleaned_data["key"])
        if Experiment.objects.filter(key=key).exists():
            raise forms.ValidationError(f"An experiment '{key}' already exists.")
        return key


class FlagForm(forms.Form):
    flag = forms.ModelChoiceField(
        queryset=Flag.objects.filter(archived_at__isnull=True), to_field_name="key", required=False,
        help_text="The flag whose variants the experiment compares.",
    )
    new_flag = forms.RegexField(
        regex=r"^[A-Za-z0-9._-]{1,100}$", required=False, label="…or create a new on/off flag",
        help_text="Key of a new boolean flag with variants 'off' (control) and 'on'.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        flag, new = data.get("flag"), data.get("new_flag")
        if bool(flag) == bool(new):
            raise forms.ValidationError("Pick an existing flag or give the key of a new one (not both).")
        if new and Flag.objects.filter(key=new).exists():
            self.add_error("new_flag", f"A flag '{new}' already exists; pick it above.")
        return data


class SplitForm(forms.Form):
    control = forms.ChoiceField(help_text="What users get today: the baseline every other variation is compared to.")
    treatments = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, help_text="The changes to test.")
    weights = forms.CharField(
        initial="50/50",
        help_text="Share of the experiment's users per variation, control first, e.g. 50/50 or 34/33/33.",
    )
    coverage = forms.FloatField(
        min_value=0.1, max_value=100, initial=100,
        help_text="Percent of eligible users who enter the experiment; the rest get the flag's default.",
    )
    condition = ConditionField()
    segments = segments_field()
    hash_attribute = forms.CharField(initial="id", help_text="Users are split by this attribute (usually 'id').")

    def __init__(self, *args: Any, variants: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        targeting_choices(self)
        for name in ("control", "treatments"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [(v, v) for v in variants]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        control, treatments = data.get("control"), list(data.get("treatments") or [])
        if control and control in treatments:
            self.add_error("treatments", "The control cannot also be a treatment.")
        if control and treatments and "weights" in data:
            try:
                data["weights"] = parse_weights(data["weights"], 1 + len(treatments))
            except forms.ValidationError as exc:
                self.add_error("weights", exc)
        return data


def metric_label(metric: Metric) -> str:
    """A metric as the wizard shows it everywhere: its name and, to tell it apart, its key."""
    name = metric_title(metric.name or metric.key, metric.kind, metric.ltv_day)
    return f"{name} ({metric.key})" if name != metric.key else metric.key


class MetricChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return metric_label(obj)


class MetricMultipleChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return metric_label(obj)


class MetricsForm(forms.Form):
    primary = MetricChoiceField(
        queryset=Metric.objects.filter(archived_at__isnull=True), to_field_name="key",
        help_text="The one metric that decides: ship if it improves and no guardrail is harmed.",
    )
    secondary = MetricMultipleChoiceField(
        queryset=Metric.objects.filter(archived_at__isnull=True), to_field_name="key", required=False,
        widget=forms.CheckboxSelectMultiple, help_text="Watched for understanding; they do not decide.",
    )
    guardrails = MetricMultipleChoiceField(
        queryset=Metric.objects.filter(archived_at__isnull=True), to_field_name="key", required=False,
        widget=forms.CheckboxSelectMultiple, help_text="Must not get worse (errors, latency, unsubscribes…).",
    )
    stats_engine = forms.ChoiceField(
        choices=Experiment.StatsEngine.choices, initial=project_engine_default, label="Statistics engine",
        required=False,
        help_text="Frequentist: p-values and confidence intervals. Bayesian: chance to beat the control and risk, "
                  "with credible intervals (no sequential test, no multiple-testing correction).",
    )
    prior_enabled = forms.BooleanField(
        required=False, initial=False, label="Bayesian prior",
        help_text="Use a normal prior on the relative lift instead of a flat one (it pulls small samples toward "
                  "the prior mean).",
    )
    prior_mean = forms.FloatField(min_value=-100, max_value=100, initial=0, label="Prior mean (%)", required=False,
                                  help_text="The expected lift before any data, in percent; 0 = no change.")
    prior_stddev = forms.FloatField(min_value=0.1, max_value=1000, initial=30, label="Prior standard deviation (%)",
                                    required=False,
                                    help_text="How far lifts usually go, in percent; 30 is GrowthBook's default.")
    sequential = forms.BooleanField(
        required=False, initial=lambda: project_engine_default() != Experiment.StatsEngine.BAYESIAN,
        help_text="Recommended: results stay valid however often you look, so you may stop as soon as it is clear. "
                  "Frequentist engine only.",
    )
    cuped = forms.BooleanField(
        required=False, initial=True, label="CUPED",
        help_text="Use each user's behaviour before the experiment to remove noise: same answer, sooner.",
    )
    alpha = forms.FloatField(min_value=0.001, max_value=0.5, initial=0.05,
                             help_text="Accepted false-positive rate (0.05: 1 in 20 A/A tests looks significant).")
    correction = forms.ChoiceField(choices=Experiment.Correction.choices, initial="none",
                                   help_text="Adjust p-values when several metrics or variations are compared.")
    slice_attributes = forms.CharField(
        required=False, initial="country, platform, plan",
        help_text="Exposure attributes to break results down by (up to 5), comma-separated.",
    )
    data_source = forms.ModelChoiceField(
        queryset=DataSource.objects.all(), to_field_name="key", required=False,
        empty_label="This service's events (sent to /api/v1/events)",
        help_text="Where the exposures and events are read: this service's own, or a warehouse data source.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        primary = data.get("primary")
        for name in ("secondary", "guardrails"):
            if primary is not None and primary in list(data.get(name) or []):
                self.add_error(name, "The primary metric is already included.")
        overlap = set(data.get("secondary") or []) & set(data.get("guardrails") or [])
        if overlap:
            self.add_error("guardrails", "A metric can be secondary or a guardrail, not both.")
        # Left out, the engine is the project's default and the prior its usual values.
        data["stats_engine"] = data.get("stats_engine") or project_engine_default()
        data["prior_mean"] = 0.0 if data.get("prior_mean") is None else data["prior_mean"]
        data["prior_stddev"] = 30.0 if data.get("prior_stddev") is None else data["prior_stddev"]
        if data.get("stats_engine") == Experiment.StatsEngine.BAYESIAN:
            if data.get("sequential"):
                self.add_error("sequential", "The Bayesian engine has no sequential test: untick it, or choose the "
                                             "frequentist engine.")
            if data.get("correction") not in (None, "", "none"):
                self.add_error("correction", "The Bayesian engine gives no p-values to correct: choose none, or "
                                             "the frequentist engine.")
        attrs = [a.strip() for a in str(data.get("slice_attributes") or "").split(",") if a.strip()]
        if len(attrs) > 5 or len(set(attrs)) != len(attrs):
            self.add_error("slice_attributes", "Give up to 5 different attribute names.")
        data["slice_attributes"] = attrs
        return data


class PowerForm(forms.Form):
    mde = forms.FloatField(
        min_value=0.01, max_value=500, initial=5, label="Smallest lift worth detecting (%)",
        help_text="The relative change of the primary metric you would act on, e.g. 5 for +5%.",
    )
    baseline = forms.FloatField(
        min_value=0, label="Today's value of the primary metric",
        help_text="For a rate, in percent (e.g. 12 for 12%); for a mean (revenue per user), its value.",
    )
    stddev = forms.FloatField(
        min_value=0, required=False, label="Standard deviation per user (means only)",
        help_text="Spread of the metric across users; leave empty for rates.",
    )
    daily_users = forms.IntegerField(min_value=1, label="Eligible users per day",
                                     help_text="Users who would reach the experiment each day (before coverage).")

    def __init__(self, *args: Any, binary: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.binary = binary

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        baseline = data.get("baseline")
        if self.binary and baseline is not None and not 0 < baseline < 100:
            self.add_error("baseline", "A rate is between 0 and 100%.")
        if not self.binary and not data.get("stddev"):
            self.add_error("stddev", "A mean metric needs its standard deviation per user.")
        if not self.binary and baseline is not None and baseline <= 0:
            self.add_error("baseline", "Give a positive baseline.")
        return data


def plan(answers: Mapping[str, Any]) -> Plan | None:
    """The plan of the answers so far (None until the split, metrics and effect are known)."""
    power = answers.get("power")
    split = answers.get("split")
    metrics = answers.get("metrics")
    if not power or not split or not metrics:
        return None
    return plan_experiment(PlanInput(
        mde_percent=float(power["mde"]), baseline=float(power["baseline"]),
        stddev=float(power["stddev"]) if power.get("stddev") not in (None, "") else None,
        binary=bool(power.get("binary")), daily_users=float(power["daily_users"]),
        coverage_percent=float(split["coverage"]), weights=list(split["weights"]), alpha=float(metrics["alpha"]),
        sequential=bool(metrics.get("sequential")), cuped=bool(metrics.get("cuped")),
    ))


def _answers(request: HttpRequest) -> dict[str, Any]:
    value = request.session.get(SESSION_KEY)
    return dict(value) if isinstance(value, dict) else {}


# Answers that depend on an earlier one: a different flag has other variants, a different
# primary metric another baseline.
DEPENDANTS = {"flag": ("split",), "metrics": ("power",)}


def _save(request: HttpRequest, step: str, data: Mapping[str, Any]) -> None:
    answers = _answers(request)
    previous = answers.get(step)
    answers[step] = dict(data)
    if previous is not None:
        changed = previous != answers[step] if step == "flag" else previous.get("primary") != data.get("primary")
        if changed:
            for later in DEPENDANTS.get(step, ()):
                answers.pop(later, None)
    request.session[SESSION_KEY] = answers


def _next(step: str) -> str:
    return STEP_KEYS[min(STEP_KEYS.index(step) + 1, len(STEP_KEYS) - 1)]


def _first_missing(answers: Mapping[str, Any], step: str) -> str | None:
    for key in STEP_KEYS[: STEP_KEYS.index(step)]:
        if key not in answers:
            return key
    return None


def _variants(answers: Mapping[str, Any]) -> list[str]:
    flag = answers.get("flag") or {}
    if flag.get("new_flag"):
        return ["off", "on"]
    found = Flag.objects.filter(key=flag.get("flag")).first()
    return [v.key for v in found.variants.all()] if found else []


def _primary(answers: Mapping[str, Any]) -> Metric | None:
    key = (answers.get("metrics") or {}).get("primary")
    return Metric.objects.filter(key=key).first() if key else None


def _form(step: str, answers: Mapping[str, Any], data: Any) -> forms.Form:
    initial = dict(answers.get(step) or {})
    if step == "basics":
        if isinstance(initial.get("tags"), list):
            initial["tags"] = ", ".join(initial["tags"])
        return BasicsForm(data, initial=initial)
    if step == "flag":
        return FlagForm(data, initial=initial)
    if step == "split":
        variants = _variants(answers)
        if "weights" in initial and isinstance(initial["weights"], list):
            initial["weights"] = "/".join(f"{w * 100:g}" for w in initial["weights"])
        if not initial and len(variants) >= 2:
            initial = {"control": variants[0], "treatments": variants[1:2], "weights": "50/50", "coverage": 100,
                       "hash_attribute": "id"}
        return SplitForm(data, initial=initial, variants=variants)
    if step == "metrics":
        if "slice_attributes" in initial and isinstance(initial["slice_attributes"], list):
            initial["slice_attributes"] = ", ".join(initial["slice_attributes"])
        return MetricsForm(data, initial=initial)
    primary = _primary(answers)
    return PowerForm(data, initial=initial, binary=primary is None or primary.kind in BINARY_KINDS)


def _plain(step: str, form: forms.Form) -> dict[str, Any]:
    """The cleaned answers as JSON-friendly values for the session."""
    data = dict(form.cleaned_data)
    if step == "basics":
        data["environment"] = data["environment"].key
    elif step == "flag":
        data["flag"] = data["flag"].key if data.get("flag") else ""
    elif step == "metrics":
        data["primary"] = data["primary"].key
        data["data_source"] = data["data_source"].key if data.get("data_source") else ""
        data["secondary"] = [m.key for m in data.get("secondary") or []]
        data["guardrails"] = [m.key for m in data.get("guardrails") or []]
    elif step == "power":
        assert isinstance(form, PowerForm)
        data["binary"] = form.binary
    return data


@require_http_methods(["GET", "POST"])
@permission_required(Action.EXPERIMENT_CREATE)
def wizard(request: HttpRequest, step: str) -> HttpResponse:
    if step not in STEP_KEYS:
        raise Http404("No such step.")
    if step == "basics" and request.GET.get("restart"):
        request.session.pop(SESSION_KEY, None)
    answers = _answers(request)
    missing = _first_missing(answers, step)
    if missing is not None:
        return HttpResponseRedirect(reverse("experiment-pages:wizard", args=[missing]))
    if step == "review":
        return _review(request, answers)
    form = _form(step, answers, request.POST or None)
    if request.method == "POST" and form.is_valid():
        _save(request, step, _plain(step, form))
        # "Estimate" stays on the power step to show the plan; "Continue" moves on.
        stay = step == "power" and request.POST.get("action") == "estimate"
        return HttpResponseRedirect(reverse("experiment-pages:wizard", args=[step if stay else _next(step)]))
    primary = _primary(answers)
    return render(
        request,
        "experiments/wizard.html",
        page_context(request, step=step, steps=_step_states(step, answers), form=form,
                     plan=plan(answers) if step == "power" else None, answers=answers,
                     primary_label=metric_label(primary) if primary is not None else ""),
    )


def _step_states(step: str, answers: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    return [(key, label, "current" if key == step else "done" if key in answers else "") for key, label in STEPS]


def _description(answers: Mapping[str, Any], estimate: Plan | None) -> str:
    """The plan in words (the target effect itself is the experiment's `target_mde`)."""
    power = answers.get("power") or {}
    if estimate is None or estimate.error:
        return ""
    days = f", about {estimate.days:,} days" if estimate.days else ""
    return (f"Planned: about {estimate.users_text} users{days} at {float(power.get('daily_users') or 0):,.0f} "
            "eligible users per day.")


def _metric_labels(answers: Mapping[str, Any]) -> dict[str, Any]:
    """The chosen metrics as "name (key)", in the roles the review lists."""
    metrics = answers.get("metrics") or {}
    keys = [metrics.get("primary"), *metrics.get("secondary", []), *metrics.get("guardrails", [])]
    labels = {m.key: metric_label(m) for m in Metric.objects.filter(key__in=[k for k in keys if k])}
    return {
        "primary": labels.get(metrics.get("primary") or "", metrics.get("primary") or ""),
        "secondary": [labels.get(k, k) for k in metrics.get("secondary", [])],
        "guardrails": [labels.get(k, k) for k in metrics.get("guardrails", [])],
    }


def _target_mde(answers: Mapping[str, Any]) -> float | None:
    """The wizard asks in percent; the experiment stores a relative effect (5% -> 0.05)."""
    mde = (answers.get("power") or {}).get("mde")
    return float(mde) / 100 if mde not in (None, "") else None


def _flag_off(answers: Mapping[str, Any]) -> bool:
    key = (answers.get("flag") or {}).get("flag")
    env = (answers.get("basics") or {}).get("environment")
    return bool(key) and FlagState.objects.filter(flag__key=key, environment__key=env, enabled=False).exists()


def _review(request: HttpRequest, answers: dict[str, Any]) -> HttpResponse:
    estimate = plan(answers)
    error = ""
    if request.method == "POST":
        start = request.POST.get("action") == "start"
        if start and not can(request, Action.EXPERIMENT_START):
            error = "Your role can create drafts but not start them."
        elif (answers.get("flag") or {}).get("new_flag") and not can(request, Action.FLAG_CREATE):
            error = "Your role cannot create flags: choose an existing flag."
        else:
            try:
                experiment = _launch(request, answers, estimate, start=start)
            except ApplicationError as exc:
                form = forms.Form()
                place_service_errors(form, exc)
                error = "; ".join(str(e) for e in form.errors.get("__all__", [])) or exc.message
                for field, errs in form.errors.items():
                    if field != "__all__":
                        error += f" {field}: {' '.join(str(e) for e in errs)}"
            else:
                request.session.pop(SESSION_KEY, None)
                messages.success(
                    request,
                    f"'{experiment.key}' is running."
                    if start
                    else f"Draft '{experiment.key}' created; start it when ready.",
                )
                return HttpResponseRedirect(reverse("experiment-pages:detail", args=[experiment.key]))
    return render(
        request,
        "experiments/wizard_review.html",
        page_context(request, steps=_step_states("review", answers), answers=answers, plan=estimate, error=error,
                     can_start=can(request, Action.EXPERIMENT_START), flag_off=_flag_off(answers),
                     metric_labels=_metric_labels(answers), targeting=_targeting_words(answers),
                     targeting_warnings=condition_warnings((answers.get("split") or {}).get("condition") or {},
                                                           flag_selectors.attribute_specs())),
    )


def _targeting_words(answers: Mapping[str, Any]) -> str:
    """Who may enter, in words: "everyone", "in segment eu-customers and plan is one of pro, business"."""
    split = answers.get("split") or {}
    return describe_condition(split.get("condition") or {}, segments=split.get("segments") or ())


def _launch(request: HttpRequest, answers: Mapping[str, Any], estimate: Plan | None,
            *, start: bool) -> Experiment:
    """The answers as the launch service takes them (percentages as shares, the plan in words)."""
    basics, flag_step, split, metrics = answers["basics"], answers["flag"], answers["split"], answers["metrics"]
    keys = [split["control"], *split["treatments"]]
    links = [{"metric": metrics["primary"], "role": "primary"}]
    links += [{"metric": k, "role": "secondary"} for k in metrics.get("secondary", [])]
    links += [{"metric": k, "role": "guardrail"} for k in metrics.get("guardrails", [])]
    fields: dict[str, Any] = {
        "name": basics.get("name", ""),
        "hypothesis": basics["hypothesis"],
        "owner": basics.get("owner", ""),
        "tags": list(basics.get("tags") or []),
        "description": _description(answers, estimate),
        "coverage": float(split["coverage"]) / 100,
        "condition": split.get("condition") or {},
        "segments": list(split.get("segments") or []),
        "hash_attribute": split.get("hash_attribute") or "id",
        "sequential": bool(metrics.get("sequential")),
        "cuped": bool(metrics.get("cuped")),
        "alpha": float(metrics["alpha"]),
        "correction": metrics.get("correction", "none"),
        "stats_engine": metrics.get("stats_engine") or None,
        "prior_enabled": bool(metrics.get("prior_enabled")),
        "prior_mean": float(metrics.get("prior_mean") or 0.0) / 100,
        "prior_stddev": float(metrics.get("prior_stddev") or 30.0) / 100,
        "slice_attributes": list(metrics.get("slice_attributes") or []),
        "difference_type": "relative",
        "target_mde": _target_mde(answers),
        "data_source": metrics.get("data_source") or None,
    }
    if estimate is not None and estimate.tuning:
        # The confidence sequence is tightest around N*: tune it to the planned sample.
        fields["sequential_tuning"] = float(estimate.tuning)
    new_flag = str(flag_step.get("new_flag") or "")
    return services.experiment_launch(
        actor=page_actor(request), key=basics["key"],
        environment=flag_selectors.environment_get(key=basics["environment"]),
        flag=None if new_flag else flag_selectors.flag_get(key=flag_step["flag"]), new_flag_key=new_flag,
        variations=[{"key": k, "name": k, "weight": w} for k, w in zip(keys, split["weights"], strict=True)],
        metrics=links, start=start, **fields,
    )
