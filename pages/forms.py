"""Forms of the PM pages: the guided experiment wizard, stopping with a decision, ramps.

Forms parse and check what a person typed; the services validate again and own the write.
A service rejection comes back as `ApplicationError.details` ({field: [messages]}) and is
put on the matching form field, or on the form itself when no field matches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from config.errors import ApplicationError, error_path_label
from flags import selectors as flag_selectors
from flags.condition_widget import ConditionBuilderWidget
from flags.engine.builder import builder_catalog

PERCENTS_RE = re.compile(r"^\s*\d+(\.\d+)?\s*%?\s*(,\s*\d+(\.\d+)?\s*%?\s*)*$")
CONDITION_HELP = (
    "Who can enter: pick attributes, comparisons and values, or write the condition as JSON, e.g. "
    '{"country": {"$in": ["DE", "FR"]}}. An attribute nobody defined works too, with a warning. '
    "Empty: everyone."
)
SEGMENTS_HELP = "Only units in every selected saved segment (and matching the targeting above)."


def place_service_errors(form: forms.Form, error: ApplicationError) -> None:
    """Put a service's {field: [messages]} on the form's fields (unknown fields: on the form),
    each message after the words of its path when the field alone does not say where it is
    ("Step 2, percent: ...")."""
    details = error.details if isinstance(error.details, Mapping) else {}
    placed = False
    for key, messages in details.items():
        field = str(key).split(".")[0].split("[")[0]
        text = messages if isinstance(messages, list) else [str(messages)]
        target = field if field in form.fields else None
        for message in text:
            form.add_error(target, str(message) if key == target else f"{error_path_label(str(key))}: {message}")
            placed = True
    if not placed:
        form.add_error(None, error.message)


class JSONObjectField(forms.CharField):
    """A JSON object typed into a textarea; empty means {}."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        # An answer kept as an object (a step of the guided creation) is shown as JSON again.
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
        return value

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        if not text or not str(text).strip():
            return {}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from exc
        if not isinstance(parsed, dict):
            raise forms.ValidationError("Give a JSON object, for example {\"country\": \"DE\"}.")
        return parsed


class ConditionField(JSONObjectField):
    """A targeting condition, with the condition builder around its JSON."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Targeting (optional)")
        kwargs.setdefault("help_text", CONDITION_HELP)
        kwargs.setdefault("widget", ConditionBuilderWidget())
        super().__init__(**kwargs)


def segments_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Saved segments",
                                     help_text=SEGMENTS_HELP)


def targeting_choices(form: forms.Form) -> None:
    """The attribute definitions for the form's condition builder and the segments to pick from."""
    widget = form.fields["condition"].widget
    if isinstance(widget, ConditionBuilderWidget):
        widget.catalog = builder_catalog(flag_selectors.attribute_specs())
    segments = form.fields.get("segments")
    if isinstance(segments, forms.MultipleChoiceField):
        segments.choices = [(s.key, f"{s.name} ({s.key})" if s.name and s.name != s.key else s.key)
                            for s in flag_selectors.segment_list()]


def parse_percents(text: str) -> list[float]:
    """'5, 25, 50, 100' or '5%, 25%' -> [5.0, 25.0, ...]."""
    if not PERCENTS_RE.match(text or ""):
        raise forms.ValidationError("Give percentages separated by commas, e.g. 5, 25, 50, 100.")
    return [float(p.strip().rstrip("%").strip()) for p in text.split(",")]


def parse_weights(text: str, count: int) -> list[float]:
    """'50/50', '34, 33, 33' or '0.5 0.5' -> weights summing to 1 (percentages allowed)."""
    parts = [p for p in re.split(r"[\s,/;]+", (text or "").strip().replace("%", "")) if p]
    try:
        numbers = [float(p) for p in parts]
    except ValueError as exc:
        raise forms.ValidationError("Give one number per variation, e.g. 50/50 or 34, 33, 33.") from exc
    if len(numbers) != count:
        raise forms.ValidationError(f"Give {count} weights, one per variation (you gave {len(numbers)}).")
    if any(n < 0 for n in numbers) or sum(numbers) <= 0:
        raise forms.ValidationError("Weights must be non-negative and not all zero.")
    total = sum(numbers)
    if abs(total - 1.0) > 1e-6 and abs(total - 100.0) > 1e-6:
        raise forms.ValidationError(f"Weights must add up to 100% (they add up to {total:g}).")
    return [n / total for n in numbers]


class RampForm(forms.Form):
    environment = forms.ChoiceField(help_text="Where the ramp runs.")
    variant = forms.ChoiceField(help_text="The variant the ramp serves to a growing share of units.")
    percents = forms.CharField(
        initial="5, 25, 50, 100",
        help_text="The share of units at each step, rising. The same units stay in as the share grows.",
    )
    start = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="When the first step begins (UTC). Empty: now.",
    )
    interval_hours = forms.FloatField(
        min_value=0.01, initial=24, help_text="Hours between steps: each step runs this long before the next."
    )
    position = forms.ChoiceField(
        choices=[("top", "Before the other rules"), ("bottom", "After the other rules")],
        initial="bottom",
        help_text="Rules are read in order; the first that matches a unit serves it.",
    )
    condition = ConditionField()
    segments = segments_field()

    def __init__(self, *args: Any, environments: Iterable[str], variants: Iterable[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        targeting_choices(self)
        env_field = self.fields["environment"]
        variant_field = self.fields["variant"]
        assert isinstance(env_field, forms.ChoiceField) and isinstance(variant_field, forms.ChoiceField)
        env_field.choices = [(e, e) for e in environments]
        variant_field.choices = [(v, v) for v in variants]

    def clean_percents(self) -> list[float]:
        return parse_percents(self.cleaned_data["percents"])

    def start_at(self) -> datetime:
        value: datetime | None = self.cleaned_data.get("start")
        return value or timezone.now()

    def interval(self) -> timedelta:
        return timedelta(hours=float(self.cleaned_data["interval_hours"]))


class StopForm(forms.Form):
    """Stop an experiment with a decision: ship a variation to everyone, or roll back."""

    decision = forms.ChoiceField(
        choices=[("ship", "Ship a variation to everyone"), ("rollback", "Roll back: everyone gets the control")],
        widget=forms.RadioSelect,
    )
    variation = forms.ChoiceField(required=False, help_text="Which variation to ship (when shipping).")
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why: the result page's recommendation and anything else the team should know.",
    )

    def __init__(self, *args: Any, variations: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["variation"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *variations]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "ship" and not data.get("variation"):
            self.add_error("variation", "Pick the variation to ship.")
        return data
