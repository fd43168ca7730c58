"""The condition builder as a form widget: the condition's JSON textarea, enhanced by
`flags/static/flags/condition-builder.js` with rows of attribute, comparison and values.

The textarea stays what the form submits (and what works without the script); the widget adds
the builder's frame, a row template and the catalog of attributes and operators
(`flags.engine.builder.builder_catalog`) as a JSON data block, so the page needs no inline
script. Forms give each instance its catalog: `widget.catalog = builder_catalog(definitions)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from flags.engine.builder import builder_catalog


class ConditionBuilderWidget(forms.Widget):
    template_name = "flags/widgets/condition_builder.html"

    class Media:
        js = ("flags/condition-builder.js",)
        css = {"all": ("flags/condition-builder.css",)}

    def __init__(self, textarea: forms.Widget | None = None, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.textarea = textarea if textarea is not None else forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})
        self.catalog: Mapping[str, Any] = builder_catalog(())

    def __deepcopy__(self, memo: dict[int, Any]) -> ConditionBuilderWidget:
        copy: ConditionBuilderWidget = super().__deepcopy__(memo)
        copy.textarea = self.textarea.__deepcopy__(memo)
        return copy

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["textarea_html"] = self.textarea.render(name, value, attrs)
        context["widget"]["catalog"] = self.catalog
        return context

    def format_value(self, value: Any) -> Any:
        return self.textarea.format_value(value)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return self.textarea.value_from_datadict(data, files, name)

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return self.textarea.value_omitted_from_data(data, files, name)

    def use_required_attribute(self, initial: Any) -> bool:
        return False
