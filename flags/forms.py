"""Admin forms for flags, rules, segments and environments.

The forms only parse what people type (JSON, percentages, splits, tag and id lists) into
the values the services take; the services do the validation that matters. When a service
rejects a write, its `{field: [messages]}` details are placed back on these forms as errors
(see `base.admin_base.ServiceModelForm`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError

from base.admin_base import ServiceModelForm
from base.forms import NameOptionalMixin, as_percent, number_text, percent_field
from base.models import Environment
from flags import selectors
from flags.condition_widget import ConditionBuilderWidget
from flags.engine.attributes import AttributeDefinition as AttributeSpec
from flags.engine.builder import builder_catalog
from flags.engine.limits import METADATA_KEY_MAX_LENGTH, METADATA_MAX_KEYS, METADATA_MAX_STRING
from flags.engine.validation import METADATA_RESERVED_KEYS, check_metadata
from flags.models import AttributeDefinition, Flag, FlagState, Rule, Segment, Variant

if TYPE_CHECKING:
    from django.forms import CheckboxSelectMultiple as CheckboxesWidget
    from django.forms import NumberInput as NumberWidget
    from django.forms import Select as SelectWidget
    from django.forms import Textarea as TextareaWidget
    from django.forms import TextInput as TextWidget
else:
    from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget as CheckboxesWidget
    from unfold.widgets import UnfoldAdminDecimalFieldWidget as NumberWidget
    from unfold.widgets import UnfoldAdminSelectWidget as SelectWidget
    from unfold.widgets import UnfoldAdminTextareaWidget as TextareaWidget
    from unfold.widgets import UnfoldAdminTextInputWidget as TextWidget

CONDITION_EXAMPLE = '{"country": {"$in": ["DE", "FR"]}, "plan": "pro"}'
CONDITION_HELP = (
    "Who this applies to: pick attributes, comparisons and values, or write the condition as JSON, for "
    f"example {CONDITION_EXAMPLE} (operators: $eq $ne $in $nin $gt $gte $lt $lte $regex $exists $type "
    "$elemMatch $all $size $and $or $nor $not, version comparisons $veq $vgt $vlt …). Attributes are defined "
    "under Attributes; an attribute nobody defined works too, with a warning. Empty: everyone."
)
PREREQUISITES_HELP = (
    'Flags that must serve a given value first, as a JSON list. Example: [{"flag": "new-checkout", '
    '"condition": {"value": true}}]. Leave empty for none.'
)

METADATA_HELP = (
    "Free-form OpenFeature flag metadata that OFREP serves with every evaluation, as a JSON object of keys to "
    f"strings, numbers or booleans. Example: {{\"release\": \"1.0.2\", \"cost_weight\": 0.5, \"pii\": false}}. "
    f"At most {METADATA_MAX_KEYS} keys of up to {METADATA_KEY_MAX_LENGTH} characters (a letter, then letters, "
    f"digits, _ . : -), strings of up to {METADATA_MAX_STRING} characters; the keys "
    f"{', '.join(METADATA_RESERVED_KEYS)} are the flag's own. Leave empty for none."
)


# Fields -----------------------------------------------------------------------------------


def _json_error(exc: json.JSONDecodeError) -> str:
    return f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."


# JSON nested beyond what the parser follows; the services refuse far less deep documents
# with a message naming the limit (docs/api.md, Limits).
TOO_DEEP = "This JSON is nested too deeply to be read."


def condition_widget(rows: int = 3) -> ConditionBuilderWidget:
    """The condition builder around the admin's textarea."""
    return ConditionBuilderWidget(textarea=TextareaWidget(attrs={"rows": rows, "class": "font-mono",
                                                                 "spellcheck": "false"}))


def set_condition_catalog(form: forms.BaseForm, attributes: Sequence[AttributeSpec] | None = None,
                          field: str = "condition") -> None:
    """Give the form's condition builder the attribute definitions (read now when not given)."""
    widget = form.fields[field].widget
    if isinstance(widget, ConditionBuilderWidget):
        widget.catalog = builder_catalog(selectors.attribute_specs() if attributes is None else attributes)


class JSONTextField(forms.Field):
    """JSON typed into a textarea; the error says where the text stops being JSON."""

    def __init__(
        self, *, kind: type = dict, example: str = "", rows: int = 3, null: bool = False, **kwargs: Any
    ) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", TextareaWidget(attrs={"rows": rows, "class": "font-mono"}))
        super().__init__(**kwargs)
        self.kind = kind
        self.example = example
        self.null = null

    def empty(self) -> Any:
        return None if self.null else self.kind()

    def to_python(self, value: Any) -> Any:
        if not isinstance(value, str):
            return self.empty() if value is None else value
        text = value.strip()
        if not text:
            return self.empty()
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(_json_error(exc), code="invalid_json") from exc
        except RecursionError as exc:
            raise ValidationError(TOO_DEEP, code="too_deep") from exc
        if self.kind is dict and not isinstance(parsed, dict):
            raise ValidationError(f"Write a JSON object in curly braces, for example {self.example}.",
                                  code="not_object")
        if self.kind is list and not isinstance(parsed, list):
            raise ValidationError(f"Write a JSON list in square brackets, for example {self.example}.",
                                  code="not_list")
        return parsed

    def validate(self, value: Any) -> None:
        if self.required and value in (None, {}, []):
            raise ValidationError(self.error_messages["required"], code="required")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if value in (None, {}, []):
            return ""
        return json.dumps(value, indent=2, ensure_ascii=False)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


class TagsField(forms.Field):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated, for example: checkout, growth")
        kwargs.setdefault("widget", TextWidget())
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return [str(v) for v in value]
        return [t.strip() for t in _text(value).split(",") if t.strip()]

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(map(str, value)) if isinstance(value, list) else value


class IdListField(forms.Field):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", TextareaWidget(attrs={"rows": 4, "class": "font-mono"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return [str(v) for v in value]
        return [t for t in re.split(r"[\s,;]+", _text(value)) if t]

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(map(str, value)) if isinstance(value, list) else value


class SplitField(forms.Field):
    """An experiment split typed as `control: 50, treatment: 50` (percentages)."""

    ITEM = re.compile(r"^\s*([A-Za-z0-9._-]+)\s*[:=]\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", TextWidget())
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[tuple[str, float]]:
        if isinstance(value, list):
            return value
        pairs = []
        for part in filter(None, (p.strip() for p in re.split(r"[,\n]", _text(value)))):
            match = self.ITEM.match(part)
            if not match:
                raise ValidationError(
                    f"Could not read '{part}'. Write each variant with its percentage, for example "
                    "control: 50, treatment: 50.",
                    code="bad_split",
                )
            pairs.append((match.group(1), float(match.group(2))))
        return pairs

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(f"{key}: {number_text(share)}" for key, share in value)
        return value


# Variant values: what a person types for each flag type -----------------------------------

TRUE_WORDS = {"true", "on", "yes", "1"}
FALSE_WORDS = {"false", "off", "no", "0"}


def parse_variant_value(text: str, value_type: str) -> Any:
    """Turn typed text into a variant value of the flag's type; ValueError says what to type."""
    if value_type == Flag.ValueType.BOOLEAN:
        word = text.strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError("Use true or false.")
    if value_type == Flag.ValueType.STRING:
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if value_type == Flag.ValueType.NUMBER:
            raise ValueError("Use a number, for example 10 or 0.5.") from exc
        raise ValueError(_json_error(exc)) from exc
    except RecursionError as exc:
        raise ValueError(TOO_DEEP) from exc
    if value_type == Flag.ValueType.NUMBER and (
        not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
    ):
        raise ValueError("Use a number, for example 10 or 0.5.")
    return value


def format_variant_value(value: Any, value_type: str) -> str:
    if value_type == Flag.ValueType.STRING and isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# Flags ------------------------------------------------------------------------------------


class FlagChangeForm(ServiceModelForm):
    tags = TagsField()
    metadata = JSONTextField(kind=dict, example='{"release": "1.0.2"}', help_text=METADATA_HELP)
    prerequisites = JSONTextField(kind=list, example='[{"flag": "new-checkout"}]', help_text=PREREQUISITES_HELP)

    class Meta:
        model = Flag
        fields = ("name", "description", "owner", "tags", "metadata", "lifecycle", "prerequisites")

    def clean_metadata(self) -> Any:
        """The services' rules (``check_metadata``), shown on the field itself."""
        metadata = self.cleaned_data.get("metadata")
        problems = check_metadata(metadata)
        if problems:
            raise ValidationError([
                f"{field.removeprefix('metadata.')}: {message}" if field != "metadata" else message
                for field, messages in problems.items() for message in messages
            ])
        return metadata


class FlagAddForm(FlagChangeForm):
    default_variant = forms.CharField(
        label="Default", required=False, max_length=100, widget=TextWidget(),
        help_text="Variant key served when the flag is on and no rule matches. Blank: the variant served when "
                  "off ('off' for a boolean flag without variants); rules then hand out the others.",
    )
    off_variant = forms.CharField(
        label="Served when off", required=False, max_length=100, widget=TextWidget(),
        help_text="Variant key served when the flag is off. Blank: 'off' for a boolean flag without variants, "
                  "otherwise the first variant.",
    )

    class Meta:
        model = Flag
        fields = ("key", "name", "description", "value_type", "owner", "tags", "metadata", "lifecycle",
                  "prerequisites")
        help_texts = {
            "key": "What the SDKs ask for: letters, digits, dots, underscores and hyphens. It cannot be changed later.",
            "value_type": "A boolean flag without variants gets 'off' (false) and 'on' (true).",
        }


class VariantForm(ServiceModelForm):
    value = forms.CharField(
        widget=TextareaWidget(attrs={"rows": 1, "class": "font-mono"}),
        help_text="true/false for boolean flags, a number, plain text, or JSON for JSON flags.",
    )

    class Meta:
        model = Variant
        fields = ("key", "name", "value")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["value"] = format_variant_value(self.instance.value, self.instance.flag.value_type)


def _variant_choices(keys: Sequence[str]) -> list[tuple[str, str]]:
    return [(k, k) for k in keys]


class FlagStateForm(ServiceModelForm):
    """The kill switch and served variants of a flag in one environment."""

    default_variant = forms.ChoiceField(label="Default", widget=SelectWidget(),
                                        help_text="Served when the flag is on and no rule matches.")
    off_variant = forms.ChoiceField(label="Served when off", widget=SelectWidget())

    class Meta:
        model = FlagState
        fields = ("enabled", "default_variant", "off_variant")
        labels = {"enabled": "On"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keys: list[str] = []
        if self.instance.pk is not None:
            keys = list(self.instance.flag.variants.values_list("key", flat=True))
        for name in ("default_variant", "off_variant"):
            field_ = self.fields.get(name)
            if isinstance(field_, forms.ChoiceField):
                field_.choices = _variant_choices(keys)


# Rules ------------------------------------------------------------------------------------

RULE_MODEL_FIELDS = (
    "kind", "description", "enabled", "condition", "segments", "prerequisites", "variant", "hash_attribute",
    "fallback_attribute", "seed", "experiment_key", "namespace", "holdout", "phase", "starts_at", "ends_at",
)
# Service field -> rule form field, for placing service errors.
RULE_ERROR_FIELDS = {"coverage": "percentage", "variations": "split", "weights": "split"}


class RuleForm(ServiceModelForm):
    position = forms.IntegerField(
        label="Order", required=False, min_value=0, widget=NumberWidget(),
        help_text="Rules are tried from the lowest number; the first one that matches serves.",
    )
    condition = JSONTextField(kind=dict, example=CONDITION_EXAMPLE, help_text=CONDITION_HELP,
                              widget=condition_widget())
    segments = forms.MultipleChoiceField(
        required=False, widget=CheckboxesWidget(),
        help_text="Only users in all of the selected saved segments match.",
    )
    variant = forms.ChoiceField(label="Serve variant", required=False, widget=SelectWidget(),
                                help_text="For 'Serve a variant' and 'Percentage rollout'.")
    percentage = percent_field(
        label="Percentage of users (%)",
        help_text="Rollout: share of matching users who get the variant. Experiment: share of matching users "
                  "included. 100 = everyone.",
    )
    split = SplitField(
        label="Experiment split (%)",
        help_text="For 'Experiment split': each variant with its share, adding up to 100, "
                  "for example control: 50, treatment: 50.",
    )
    prerequisites = JSONTextField(kind=list, example='[{"flag": "new-checkout"}]', help_text=PREREQUISITES_HELP,
                                  rows=2)
    namespace = JSONTextField(kind=list, example='["checkout-layer", 0, 0.5]', rows=1, null=True,
                              help_text='Layer range the experiment owns, for example ["checkout-layer", 0, 0.5].')

    class Meta:
        model = Rule
        fields = ("position", *RULE_MODEL_FIELDS)

    def __init__(
        self, *args: Any, variant_keys: Sequence[str] = (), segment_keys: Sequence[str] = (),
        attributes: Sequence[AttributeSpec] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        set_condition_catalog(self, attributes)
        variant = self.fields["variant"]
        segments = self.fields["segments"]
        if isinstance(variant, forms.ChoiceField):
            variant.choices = [("", "—"), *_variant_choices(variant_keys)]
        if isinstance(segments, forms.MultipleChoiceField):
            known = list(segment_keys)
            known += [s for s in self.instance.segments or [] if s not in known]
            segments.choices = [(k, k) for k in known]
        if self.instance.pk is not None:
            self.initial["percentage"] = as_percent(self.instance.coverage)
            pairs = zip(self.instance.variations, self.instance.weights, strict=False)
            self.initial["split"] = [(str(k), round(float(w) * 100, 4)) for k, w in pairs]
        else:
            self.initial.setdefault("percentage", Decimal(100))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind in (Rule.Kind.FORCE, Rule.Kind.ROLLOUT) and not cleaned.get("variant") and "variant" in self.fields:
            self.add_error("variant", "Pick the variant this rule serves.")
        split = cleaned.get("split")
        if kind == Rule.Kind.EXPERIMENT and "split" in cleaned:
            if not split:
                self.add_error("split", "Give the split, for example control: 50, treatment: 50.")
            elif abs(sum(share for _, share in split) - 100) > 1e-6:
                total = number_text(sum(share for _, share in split))
                self.add_error("split", f"The split must add up to 100 % (it adds up to {total} %).")
        return cleaned

    def _service_value(self, name: str) -> dict[str, Any]:
        value = self.cleaned_data.get(name)
        if name == "percentage":
            return {"coverage": 1.0 if value is None else float(value) / 100}
        if name == "split":
            pairs = value or []
            return {"variations": [k for k, _ in pairs], "weights": [share / 100 for _, share in pairs]}
        if name == "segments":
            return {"segments": list(value or [])}
        return {name: value}

    def service_data(self) -> dict[str, Any]:
        """Every rule field, as the service takes it."""
        data: dict[str, Any] = {}
        for name in (*RULE_MODEL_FIELDS, "percentage", "split"):
            if name in self.fields:
                data.update(self._service_value(name))
        return data

    def changed_service_data(self) -> dict[str, Any]:
        """Only the fields that were edited, as the service takes them."""
        data: dict[str, Any] = {}
        for name in self.changed_data:
            if name in (*RULE_MODEL_FIELDS, "percentage", "split"):
                data.update(self._service_value(name))
        return data


# Segments and environments --------------------------------------------------------------------


class SegmentForm(NameOptionalMixin, ServiceModelForm):
    condition = JSONTextField(
        kind=dict, example=CONDITION_EXAMPLE, rows=4, widget=condition_widget(rows=4),
        help_text="For a condition segment: who belongs. Pick attributes, comparisons and values, or write the "
                  f"condition as JSON, for example {CONDITION_EXAMPLE}.",
    )
    ids = IdListField(label="Ids", help_text="For a list of ids: one per line (or separated by commas).")

    class Meta:
        model = Segment
        fields = ("key", "name", "description", "kind", "condition", "attribute", "ids", "private")
        help_texts = {
            "attribute": "For a list of ids: the attribute the ids are matched against.",
            "private": "Client keys receive its ids and condition values only as salted SHA-256 hashes, or not at "
                       "all, as each environment's client payload setting decides (docs/security.md).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_condition_catalog(self)


class AllowedValuesField(forms.Field):
    """Allowed values typed one per line; numbers are read as numbers for number attributes
    (by the form, which knows the type)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", TextareaWidget(attrs={"rows": 5, "class": "font-mono"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[Any]:
        if isinstance(value, list):
            return value
        return [line.strip() for line in _text(value).splitlines() if line.strip()]

    def prepare_value(self, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return "\n".join(v if isinstance(v, str) else json.dumps(v) for v in value)


class AttributeDefinitionForm(ServiceModelForm):
    allowed_values = AllowedValuesField(
        help_text="Optional: the values it can take, one per line. The condition builder offers them as "
                  "choices. Numbers for a number attribute, versions such as 1.2.3 for a version attribute, "
                  "the possible items for a list. None for a boolean attribute.",
    )

    class Meta:
        model = AttributeDefinition
        fields = ("name", "type", "allowed_values", "description")
        help_texts = {
            "name": "The attribute's name as the applications send it in the context, e.g. country or "
                    "app_version. It cannot be changed later.",
            "type": "Decides which comparisons the condition builder offers.",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        values = cleaned.get("allowed_values")
        if cleaned.get("type") == AttributeDefinition.Type.NUMBER and isinstance(values, list):
            numbers: list[Any] = []
            for value in values:
                try:
                    number = parse_variant_value(str(value), Flag.ValueType.NUMBER)
                except ValueError:
                    self.add_error("allowed_values", f"'{value}' is not a number.")
                    return cleaned
                numbers.append(number)
            cleaned["allowed_values"] = numbers
        return cleaned


class EnvironmentForm(NameOptionalMixin, ServiceModelForm):
    class Meta:
        model = Environment
        fields = ("key", "name", "requires_review", "review_exempts_kill_switch", "client_payload")
        help_texts = {
            "key": "For example production or staging. SDK keys are generated when you save.",
            "client_payload": "What client keys receive: every rule; the rules with private segments' values "
                              "hashed; that payload encrypted for the SDKs' decryptionKey; or nothing but remote "
                              "evaluation. Server keys are not affected.",
        }
