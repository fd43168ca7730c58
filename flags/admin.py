"""Admin for product managers: flags, their per-environment state and rules, and segments
(environments are in `environment_admin`, management tokens in `base.admin`).

Every save goes through `flags.services` (the same validation, transaction, audit entry and
config-version bump as the API). The admin never saves these rows itself: `save_model` is a
no-op and `apply` makes the service calls once the forms are valid. When a service rejects a
write, the whole request is rolled back and the form is shown again with the service's
messages on the fields they concern (see `base.admin_base.ServiceAdmin`).

Rules and segments are listed in words (`flags.summaries`), and their history pages add the
words of each changed rule or condition (`flags.history_words`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from audit.models import AuditEntry
from audit.types import Actor
from base.admin import AuditHistoryMixin, DiffWords
from base.admin_base import (
    AdminRoles,
    ErrorTarget,
    Formsets,
    Placement,
    ServiceAdmin,
    ServiceRejected,
    ServiceStackedInline,
    ServiceTabularInline,
    admin_actor,
    requires,
)
from base.forms import as_percent
from base.models import Environment
from base.permissions import Action, require
from config.errors import ApplicationError
from flags import attribute_admin as _attribute_admin  # noqa: F401 - registers the attribute admin
from flags import environment_admin as _environment_admin  # noqa: F401 - registers the environment admin
from flags import rule_sets, selectors, services
from flags.forms import (
    RULE_ERROR_FIELDS,
    FlagAddForm,
    FlagChangeForm,
    FlagStateForm,
    RuleForm,
    SegmentForm,
    VariantForm,
    parse_variant_value,
)
from flags.history_words import flag_diff_words, segment_diff_words
from flags.models import Flag, FlagState, Rule, Segment, Variant
from flags.summaries import rule_summary, segment_summary, state_warnings


def _rules_in_words(rules: Any) -> SafeString:
    """A state's rules, in order and in words."""
    return format_html_join("", '<li style="list-style:decimal;margin-left:1.25rem">{}</li>',
                            ((capfirst(rule_summary(rule)),) for rule in rules))


def _warn(request: HttpRequest, state: FlagState) -> None:
    """After a save: say which of the state's rules change nothing, and why."""
    for warning in state_warnings(state):
        messages.warning(request, f"{state.flag.key} in {state.environment.key}: {warning}")


def _forms_in_use(formset: Any) -> list[tuple[int, Any]]:
    """The inline forms that carry an item: filled in and not marked for deletion."""
    kept = []
    for index, form in enumerate(formset.forms):
        data = getattr(form, "cleaned_data", None)
        if data and not data.get("DELETE"):
            kept.append((index, form))
    return kept


# Flags ------------------------------------------------------------------------------------


class FlagStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("archived", "Archived")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(archived_at__isnull=True)
        if self.value() == "archived":
            return queryset.filter(archived_at__isnull=False)
        return queryset


class VariantInline(ServiceTabularInline[Variant, Flag]):
    model = Variant
    form = VariantForm
    fields = ("key", "name", "value")
    verbose_name_plural = "Variants: the values the flag can serve (leave empty for a boolean on/off flag)"

    def get_extra(self, request: HttpRequest, obj: Flag | None = None, **kwargs: Any) -> int:
        return 2 if obj is None else 0


class FlagStateInline(ServiceTabularInline[FlagState, Flag]):
    model = FlagState
    form = FlagStateForm
    fields = ("environment", "enabled", "default_variant", "off_variant", "rules_link")
    readonly_fields = ("environment", "rules_link")
    extra = 0
    can_delete = False
    verbose_name = "environment"
    verbose_name_plural = "On / off per environment"

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagState]:
        return super().get_queryset(request).select_related("environment").prefetch_related(
            Prefetch("rules", queryset=Rule.objects.order_by("position", "id"))).order_by("environment__key")

    def has_add_permission(self, request: HttpRequest, obj: Flag | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Flag | None = None) -> bool:
        return False

    @admin.display(description="Rules")
    def rules_link(self, obj: FlagState) -> SafeString | str:
        if obj.pk is None:
            return "—"
        rules = list(obj.rules.all())
        url = reverse("admin:flags_flagstate_change", args=[obj.pk])
        label = f"{len(rules)} rule{'s' if len(rules) != 1 else ''} · edit targeting"
        return format_html('<a href="{}" class="text-primary-600 dark:text-primary-500">{}</a><ol>{}</ol>', url,
                           label, _rules_in_words(rules))


@admin.register(Flag)
class FlagAdmin(AuditHistoryMixin, ServiceAdmin[Flag]):
    # Flags are archived, never deleted: the audit history keeps referring to them.
    roles = AdminRoles(view=Action.FLAG_VIEW, add=Action.FLAG_CREATE, change=Action.FLAG_CHANGE)
    audit_object_type = "flag"
    form = FlagChangeForm
    list_display = ("key", "name", "value_type", "status", "environments_summary", "owner", "lifecycle",
                    "updated_at")
    list_filter = (FlagStatusFilter, "value_type", "lifecycle")
    search_fields = ("key", "name", "owner", "description")
    actions = ("archive_flags", "restore_flags")
    inlines = (VariantInline, FlagStateInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        states = FlagState.objects.select_related("environment").order_by("environment__key")
        return super().get_queryset(request).prefetch_related(Prefetch("states", queryset=states))

    def get_inlines(self, request: HttpRequest, obj: Flag | None) -> Any:
        return [VariantInline] if obj is None else [VariantInline, FlagStateInline]

    def get_form(self, request: HttpRequest, obj: Flag | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = FlagAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Flag | None = None) -> Any:
        if obj is None:
            return (
                (None, {"fields": ("key", "name", "value_type", "description", "owner", "tags", "lifecycle")}),
                ("Served variants", {"fields": ("default_variant", "off_variant")}),
                ("Prerequisites", {"fields": ("prerequisites",)}),
                ("Metadata", {"fields": ("metadata",)}),
            )
        return (
            (None, {"fields": ("key", "status", "name", "value_type", "description", "owner", "tags", "lifecycle",
                               "history_link")}),
            ("Prerequisites", {"fields": ("prerequisites",)}),
            ("Metadata", {"fields": ("metadata",)}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> Any:
        return () if obj is None else ("key", "value_type", "status", "history_link")

    def audit_diff_words(self, entry: AuditEntry, path: str) -> DiffWords | None:
        return flag_diff_words(path, entry.before, entry.after)

    @admin.display(description="Status")
    def status(self, obj: Flag) -> str:
        return f"Archived since {obj.archived_at:%Y-%m-%d %H:%M}" if obj.archived_at else "Active"

    @admin.display(description="Environments")
    def environments_summary(self, obj: Flag) -> SafeString:
        return format_html_join(
            " ", '<span title="{}" style="white-space:nowrap">{} <b style="color:{}">{}</b></span>',
            ((f"serves {s.default_variant} when no rule matches, {s.off_variant} when off", s.environment.key,
              "#16a34a" if s.enabled else "#9ca3af", "on" if s.enabled else "off") for s in obj.states.all()),
        )

    @admin.display(description="History")
    def history_link(self, obj: Flag) -> SafeString:
        url = reverse("admin:flags_flag_history", args=[obj.pk])
        return format_html('<a href="{}" class="text-primary-600 dark:text-primary-500">{}</a>', url,
                           "See every change with its diff")

    # Writes ---------------------------------------------------------------------------

    def _variants(self, formset: Any, value_type: str) -> tuple[list[dict[str, Any]], list[int]]:
        variants, indexes, problems = [], [], []
        for index, form in _forms_in_use(formset):
            data = form.cleaned_data
            try:
                value = parse_variant_value(data["value"], value_type)
            except ValueError as exc:
                problems.append(Placement("variants", index, "value", str(exc)))
                continue
            variants.append({"key": data["key"], "name": data.get("name", ""), "value": value})
            indexes.append(index)
        if problems:
            raise ServiceRejected([Placement(None, None, None, "Some variant values do not fit the flag type."),
                                   *problems])
        return variants, indexes

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        actor = admin_actor(request)
        data = form.cleaned_data
        if not change:
            variants, indexes = self._variants(formsets["variants"], data["value_type"])
            # Left blank, the service picks them: the off variant, which rules then override.
            default, off = data.get("default_variant") or None, data.get("off_variant") or None
            flag = self.call(
                ErrorTarget(items={"variants": ("variants", indexes)}), services.flag_create, actor=actor,
                key=data["key"], value_type=data["value_type"], variants=variants or None, default_variant=default,
                off_variant=off, name=data["name"], description=data["description"], owner=data["owner"],
                tags=data["tags"], metadata=data["metadata"], lifecycle=data["lifecycle"],
                prerequisites=data["prerequisites"],
            )
            form.instance.pk = flag.pk
            return
        flag = Flag.objects.get(pk=form.instance.pk)
        changes = {name: data[name] for name in services.FLAG_FIELDS if name in form.changed_data}
        target = ErrorTarget()
        if "variants" in formsets:
            variants, indexes = self._variants(formsets["variants"], flag.value_type)
            current = [{"key": v.key, "name": v.name, "value": v.value} for v in flag.variants.all()]
            if variants != current:
                changes["variants"] = variants
                target = ErrorTarget(items={"variants": ("variants", indexes)})
        if changes:
            self.call(target, services.flag_update, actor=actor, flag=flag, **changes)
        if "states" in formsets:
            self._apply_states(request, actor, flag, formsets["states"])

    def _apply_states(self, request: HttpRequest, actor: Actor, flag: Flag, formset: Any) -> None:
        saved = []
        for index, state_form in enumerate(formset.forms):
            served = {name: state_form.cleaned_data[name] for name in ("enabled", "default_variant", "off_variant")
                      if name in state_form.changed_data}
            if served:
                require(request.user, Action.FLAG_KILL_SWITCH, environment=state_form.instance.environment)
                state = self.call(ErrorTarget(prefix=formset.prefix, index=index), services.flag_state_update,
                                  actor=actor, flag=Flag.objects.get(pk=flag.pk),
                                  environment=state_form.instance.environment, **served)
                saved.append(state)
        for state in saved:
            _warn(request, state)

    # Actions --------------------------------------------------------------------------

    @admin.action(description="Archive selected flags")
    @requires(Action.FLAG_ARCHIVE)
    def archive_flags(self, request: HttpRequest, queryset: QuerySet[Flag]) -> TemplateResponse | None:
        if request.POST.get("post") != "yes":
            return self.confirm(
                request, queryset, action="archive_flags", question="Archive these flags?",
                explanation="Archived flags are no longer served to SDKs: clients fall back to their code defaults. "
                            "The configuration and history are kept, and you can restore a flag at any time.",
                confirm_label="Yes, archive",
            )
        self.run_each(request, queryset, services.flag_archive, "flag", "Archived {count} flag(s).", archived=True)
        return None

    @admin.action(description="Restore selected flags")
    @requires(Action.FLAG_ARCHIVE)
    def restore_flags(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        self.run_each(request, queryset, services.flag_archive, "flag", "Restored {count} flag(s).", archived=False)


# Per-environment state and rules --------------------------------------------------------


class RuleInline(ServiceStackedInline[Rule, FlagState]):
    model = Rule
    form = RuleForm
    extra = 0
    verbose_name_plural = "Rules (tried in order; the first match serves)"
    readonly_fields = ("summary",)
    fieldsets = (
        (None, {"fields": ("summary", "position", "kind", "enabled", "description", "condition", "segments")}),
        ("What it serves", {"fields": ("variant", "percentage", "split", "hash_attribute", "experiment_key")}),
        ("Schedule, prerequisites and advanced", {
            "classes": ("collapse",),
            "fields": ("starts_at", "ends_at", "prerequisites", "seed", "fallback_attribute", "namespace", "phase"),
        }),
    )

    @admin.display(description="Summary")
    def summary(self, obj: Rule) -> str:
        return capfirst(rule_summary(obj)) if obj.pk is not None else "Summarised in words once saved."

    @admin.display(description="Percentage of users (%)")
    def percentage(self, obj: Rule) -> str:
        return f"{as_percent(obj.coverage)} %"

    @admin.display(description="Experiment split (%)")
    def split(self, obj: Rule) -> str:
        return ", ".join(f"{k}: {as_percent(float(w))}" for k, w in zip(obj.variations, obj.weights, strict=False))


@admin.register(FlagState)
class FlagStateAdmin(ServiceAdmin[FlagState]):
    """One flag in one environment: its switch, served variants and ordered targeting rules."""

    # Every flag has a state in every environment, created and kept with the flag.
    roles = AdminRoles(view=Action.FLAG_VIEW, change=Action.FLAG_CHANGE)
    form = FlagStateForm
    list_display = ("flag", "environment", "on_off", "default_variant", "off_variant", "rule_total")
    list_filter = ("environment", "enabled")
    search_fields = ("flag__key",)
    list_select_related = ("flag", "environment")
    inlines = (RuleInline,)
    readonly_fields = ("flag_link", "environment", "fall_through_check")
    fieldsets = ((None, {
        "fields": ("flag_link", "environment", "enabled", "default_variant", "off_variant", "fall_through_check"),
        "description": "When the flag is off, everyone gets the variant served when off. When it is on, the rules "
                       "below are tried in order and the first that matches serves; units no rule matches get the "
                       "default. Keep the default at the off variant and let rules hand out the rest: a rollout of "
                       "the default variant changes nothing.",
    }),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlagState]:
        rules = Prefetch("rules", queryset=Rule.objects.order_by("position", "id"))
        return super().get_queryset(request).select_related("flag", "environment").annotate(
            rule_count=Count("rules")).prefetch_related(rules)

    def environment_of(self, obj: FlagState | None) -> Environment | None:
        return obj.environment if obj is not None else None

    def get_formset_kwargs(self, request: HttpRequest, obj: FlagState, inline: Any, prefix: str) -> dict[str, Any]:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, RuleInline):
            kwargs["form_kwargs"] = {
                "variant_keys": list(obj.flag.variants.values_list("key", flat=True)),
                "segment_keys": list(Segment.objects.values_list("key", flat=True)),
                "attributes": selectors.attribute_specs(),
            }
        return kwargs

    def history_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
                     ) -> HttpResponse:
        """A state's changes are part of its flag's history."""
        state = self.get_object(request, object_id)
        if state is None or not self.has_view_or_change_permission(request, state):
            return super().history_view(request, object_id, extra_context)
        return HttpResponseRedirect(reverse("admin:flags_flag_history", args=[state.flag_id]))

    @admin.display(description="On", ordering="enabled")
    def on_off(self, obj: FlagState) -> SafeString:
        color, word = ("#16a34a", "on") if obj.enabled else ("#9ca3af", "off")
        return format_html('<b style="color:{}">{}</b>', color, word)

    @admin.display(description="Rules", ordering="rule_count")
    def rule_total(self, obj: FlagState) -> SafeString | str:
        rules = list(obj.rules.all())
        return format_html("<ol>{}</ol>", _rules_in_words(rules)) if rules else "none"

    @admin.display(description="No rule matches")
    def fall_through_check(self, obj: FlagState) -> SafeString:
        warnings = state_warnings(obj, obj.rules.all())
        served = format_html("Units no rule matches get <code>{}</code>.", obj.default_variant)
        if not warnings:
            return served
        return format_html('{}<ul class="fall-through-warnings" style="color:#b45309">{}</ul>', served,
                           format_html_join("", "<li>&#9888; {}</li>", ((w,) for w in warnings)))

    @admin.display(description="Flag")
    def flag_link(self, obj: FlagState) -> SafeString:
        url = reverse("admin:flags_flag_change", args=[obj.flag_id])
        return format_html('<a href="{}" class="text-primary-600 dark:text-primary-500">{}</a>', url, obj.flag.key)

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        actor = admin_actor(request)
        state = FlagState.objects.select_related("flag", "environment").get(pk=form.instance.pk)
        flag, environment = state.flag, state.environment
        served = {name: form.cleaned_data[name] for name in ("enabled", "default_variant", "off_variant")
                  if name in form.changed_data}
        if served:
            require(request.user, Action.FLAG_KILL_SWITCH, environment=environment)
            self.call(ErrorTarget(), services.flag_state_update, actor=actor, flag=flag, environment=environment,
                      **served)
        formset = formsets.get("rules")
        if formset is not None:
            rules, indexes = _rule_items(formset)
            self.call(ErrorTarget(items={"rules": (formset.prefix, indexes)}, fields=RULE_ERROR_FIELDS),
                      rule_sets.flag_rules_replace, actor=actor, flag=flag, environment=environment, rules=rules,
                      replacing=[f.instance.uid for f in formset.forms if f.instance.pk is not None])
        _warn(request, FlagState.objects.select_related("flag", "environment").get(pk=state.pk))


def _rule_items(formset: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """The rules the inline forms keep, in the order their "Order" numbers give (rules without
    one last, ties in page order): each a new rule's fields, or an existing rule's id and
    edited fields. Also the index of the form each came from, for placing errors."""
    kept: list[tuple[float, int, dict[str, Any]]] = []
    for index, form in _forms_in_use(formset):
        if form.instance.pk is None:
            item = form.service_data()
        else:
            item = {"id": form.instance.uid, **(form.changed_service_data() if form.has_changed() else {})}
        position = form.cleaned_data.get("position")
        kept.append((float("inf") if position is None else float(position), index, item))
    kept.sort(key=lambda entry: entry[:2])
    return [item for *_, item in kept], [index for _, index, _ in kept]


# Segments -----------------------------------------------------------------------------------


@admin.register(Segment)
class SegmentAdmin(AuditHistoryMixin, ServiceAdmin[Segment]):
    roles = AdminRoles(view=Action.SEGMENT_VIEW, add=Action.SEGMENT_CREATE, change=Action.SEGMENT_CHANGE,
                       delete=Action.SEGMENT_DELETE)
    audit_object_type = "segment"
    form = SegmentForm
    list_display = ("key", "name", "kind", "summary", "updated_at")
    list_filter = ("kind",)
    search_fields = ("key", "name", "description")
    fieldsets = (
        (None, {"fields": ("key", "name", "description", "kind")}),
        ("Condition", {"fields": ("condition",)}),
        ("List of ids", {"fields": ("attribute", "ids")}),
        ("Privacy", {"fields": ("private",)}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None) -> Any:
        return () if obj is None else ("key",)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletion is one at a time, refused while rules use the segment
        return actions

    @admin.display(description="Who")
    def summary(self, obj: Segment) -> str:
        text = segment_summary(obj)
        return text if len(text) <= 120 else text[:117] + "…"

    def audit_diff_words(self, entry: AuditEntry, path: str) -> DiffWords | None:
        return segment_diff_words(path, entry.before, entry.after)

    def apply(self, request: HttpRequest, form: Any, formsets: Formsets, change: bool) -> None:
        data = form.cleaned_data
        fields = ("name", "description", "kind", "condition", "attribute", "ids", "private")
        if not change:
            segment = self.call(ErrorTarget(), services.segment_create, actor=admin_actor(request), key=data["key"],
                                **{name: data[name] for name in fields})
            form.instance.pk = segment.pk
            return
        changes = {name: data[name] for name in fields if name in form.changed_data}
        if changes:
            self.call(ErrorTarget(), services.segment_update, actor=admin_actor(request),
                      segment=Segment.objects.get(pk=form.instance.pk), **changes)

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        services.segment_delete(actor=admin_actor(request), segment=obj)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
                    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            used = ", ".join(map(str, dict(exc.details or {}).get("used_by", [])))
            self.message_user(request, f"{exc.message} {used}".strip(), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:flags_segment_change", args=[object_id]))
