"""Helpers for driving the admin like a browser: read a form's current values from the page,
change some of them, post it back, and read the errors shown."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from django.test import Client
from django.test.utils import ContextList

from audit.models import AuditEntry
from base.models import Environment
from flags.models import Flag, FlagState, Rule, Segment, Variant

FormData = dict[str, Any]


class _FormReader(HTMLParser):
    """Collect what a browser would submit for the form with the given id."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: FormData = {}
        self._select: str | None = None
        self._select_multiple = False
        self._option: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def _add(self, name: str, value: str, multiple: bool = False) -> None:
        if "__prefix__" in name:
            return
        if multiple:
            self.data.setdefault(name, []).append(value)
        else:
            self.data[name] = value

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
            return
        if not self.inside or (not a.get("name") and tag != "option"):
            return
        name = a.get("name", "")
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._add(name, a.get("value", "on"), multiple=kind == "checkbox")
                return
            self._add(name, a.get("value", ""))
        elif tag == "select":
            self._select, self._select_multiple = name, "multiple" in a
            if not self._select_multiple:
                self._add(name, "")
        elif tag == "option" and self._select is not None and "selected" in a:
            self._add(self._select, a.get("value", ""), multiple=self._select_multiple)
        elif tag == "textarea":
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = "".join(self._text)
            self._add(self._textarea, text[1:] if text.startswith("\n") else text)
            self._textarea = None


def read_form(client: Client, url: str, form_id: str) -> FormData:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    assert reader.data, f"form {form_id} not found on {url}"
    return reader.data


def add_inline_form(data: FormData, prefix: str, values: dict[str, Any]) -> int:
    """Append one form to an inline formset, as the "Add another" button does."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    for key, value in values.items():
        data[f"{prefix}-{index}-{key}"] = value
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    return index


def management(prefix: str, total: int = 0, initial: int = 0) -> FormData:
    return {
        f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def flag_add_data(key: str = "new-checkout", *, value_type: str = "boolean",
                  variants: list[tuple[str, str]] | None = None, **fields: Any) -> FormData:
    variants = variants or []
    data: FormData = {
        "key": key, "name": "", "value_type": value_type, "description": "", "owner": "", "tags": "",
        "lifecycle": "temporary", "default_variant": "", "off_variant": "", "prerequisites": "",
        **management("variants", total=len(variants)),
    }
    for index, (variant_key, value) in enumerate(variants):
        data[f"variants-{index}-key"] = variant_key
        data[f"variants-{index}-name"] = ""
        data[f"variants-{index}-value"] = value
    data.update(fields)
    return data


def errors_of(response: Any) -> list[str]:
    """Every error message on a re-rendered admin form: main form, inline forms and formsets."""
    context = response.context
    assert isinstance(context, (ContextList, dict)) or context is not None
    found: list[str] = []
    adminform = context["adminform"]
    for messages in adminform.form.errors.values():
        found.extend(messages)
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        found.extend(formset.non_form_errors())
        for form_errors in formset.errors:
            for messages in form_errors.values():
                found.extend(messages)
    return [html.unescape(str(m)) for m in found]


def field_errors(response: Any, field: str, prefix: str | None = None, index: int = 0) -> list[str]:
    context = response.context
    if prefix is None:
        form = context["adminform"].form
    else:
        formset = next(i.formset for i in context["inline_admin_formsets"] if i.formset.prefix == prefix)
        form = formset.forms[index]
    return [html.unescape(str(m)) for m in form.errors.get(field, [])]


def snapshot() -> tuple[int, ...]:
    """Row counts of everything an admin save could write, to prove a rejected save wrote nothing."""
    return (
        Flag.objects.count(), Variant.objects.count(), FlagState.objects.count(), Rule.objects.count(),
        Segment.objects.count(), Environment.objects.count(), AuditEntry.objects.count(),
        sum(Environment.objects.values_list("config_version", flat=True)),
    )


def text_of(response: Any) -> str:
    """The page as plain text, tags removed, to look for what a person would read."""
    return html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
