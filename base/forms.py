"""Form pieces every app's admin uses: percentages typed for shares, and optional names."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms

if TYPE_CHECKING:
    from django.forms import NumberInput as NumberWidget
else:
    from unfold.widgets import UnfoldAdminDecimalFieldWidget as NumberWidget


def percent_field(*, maximum: int = 100, label: str, help_text: str = "", required: bool = False) -> forms.DecimalField:
    message = f"Give a percentage between 0 and {maximum}."
    return forms.DecimalField(
        label=label, help_text=help_text, required=required, min_value=0, max_value=maximum,
        max_digits=9, decimal_places=4, widget=NumberWidget(attrs={"step": "any"}),
        error_messages={"min_value": message, "max_value": message, "invalid": message},
    )


def number_text(value: Decimal | float) -> str:
    text = f"{float(value):.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def as_percent(share: float) -> Decimal:
    return Decimal(number_text(share * 100))


class NameOptionalMixin:
    """The services name an object after its key when no name is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields: dict[str, forms.Field] = getattr(self, "fields", {})
        name = fields.get("name")
        if name is not None:
            name.required = False
            name.help_text = name.help_text or "Leave empty to use the key."
