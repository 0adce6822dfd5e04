"""Admin for on-call schedules: a schedule with its layers (participants in order) and overrides.

Every write goes through ``incidents.oncall.services`` so the event log records it; a refusal of a
service shows up as a form error (``ServiceBackedAdmin``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest

from incidents.models import Schedule, ScheduleLayer, ScheduleOverride
from incidents.oncall import services as oncall
from incidents.oncall.models import _available_time_zones
from tocsin.admin_mixins import (
    AddOnlyAdmin,
    Operation,
    TeamListFilter,
    TeamScopedAdmin,
    TeamScopedInline,
    adopt,
)

admin.site.allow_user_search(ScheduleOverride, "user")


class ScheduleForm(forms.ModelForm):
    time_zone = forms.ChoiceField(initial="UTC")

    class Meta:
        model = Schedule
        fields = ["team", "name", "time_zone", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(z, z) for z in sorted(_available_time_zones())]


class LayerForm(forms.ModelForm):
    participant_usernames = forms.CharField(
        label="Participants",
        help_text="Usernames in rotation order, separated by commas.",
        widget=forms.TextInput(attrs={"size": 40}),
    )

    class Meta:
        model = ScheduleLayer
        fields = list(oncall.LAYER_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["participant_usernames"] = ", ".join(
                u.get_username() for u in self.instance.ordered_users()
            )

    def clean_participant_usernames(self) -> list[Any]:
        raw = self.cleaned_data["participant_usernames"]
        names = [n.strip() for n in raw.split(",") if n.strip()]
        if not names:
            raise forms.ValidationError("Name at least one participant.")
        User = get_user_model()
        found = {
            u.get_username(): u
            for u in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": names})
        }
        missing = [n for n in names if n not in found]
        if missing:
            raise forms.ValidationError(f"No user named {', '.join(missing)}.")
        return [found[n] for n in names]


class LayerInline(TeamScopedInline, admin.StackedInline):
    model = ScheduleLayer
    form = LayerForm
    fields = [
        "name",
        "participant_usernames",
        ("rotation", "shift_length_hours", "priority"),
        ("handoff_time", "handoff_weekday"),
        ("starts_at", "ends_at"),
        ("restrict_start", "restrict_end"),
    ]
    extra = 0
    verbose_name = "layer"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("members__user")


class OverrideInline(TeamScopedInline, admin.TabularInline):
    """Current and past overrides: remove one by ticking "delete"."""

    model = ScheduleOverride
    fields = ("user", "start", "end", "reason", "created_by")
    readonly_fields = fields
    extra = 0
    verbose_name = "override"
    refused_operations = (Operation.ADD,)  # new ones come through NewOverrideInline

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user", "created_by")


class NewOverrideInline(AddOnlyAdmin, TeamScopedInline, admin.TabularInline):
    model = ScheduleOverride
    fields = ("user", "start", "end", "reason")
    autocomplete_fields = ("user",)
    extra = 0
    verbose_name = "new override"
    verbose_name_plural = "add overrides"
    team_scoped_fields = {"user": "memberships__team"}  # who covers: a member of the team

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).none()


@admin.register(Schedule)
class ScheduleAdmin(TeamScopedAdmin, admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "team", "time_zone", "layer_count")
    list_filter = (TeamListFilter,)
    list_select_related = ("team",)
    search_fields = ("name", "description")
    inlines = (LayerInline, OverrideInline, NewOverrideInline)

    @admin.display(description="layers")
    def layer_count(self, schedule: Schedule) -> int:
        return len(schedule.layers.all())

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("layers")

    def save_model(self, request: HttpRequest, obj: Schedule, form: BaseForm, change: bool) -> None:
        self.ensure_manages(request, obj)
        if not change:
            schedule = oncall.create_schedule(
                obj.team,
                obj.name,
                time_zone=obj.time_zone,
                description=obj.description,
                actor=request.user,
            )
            adopt(obj, schedule)
            return
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in ("name", "time_zone", "description")
        }
        for name in changes:  # the form already applied them; the service records before/after
            setattr(obj, name, form.initial[name])
        oncall.update_schedule(obj, actor=request.user, **changes)

    def save_related(
        self, request: HttpRequest, form: BaseForm, formsets: list[Any], change: bool
    ) -> None:
        schedule = form.instance
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is ScheduleLayer:
                self._save_layers(request, schedule, formset)
            elif isinstance(formset.instance, Schedule) and formset.model is ScheduleOverride:
                self._save_overrides(request, schedule, formset)

    def _save_layers(self, request: HttpRequest, schedule: Schedule, formset: Any) -> None:
        deleted = {id(f) for f in formset.deleted_forms}
        for layer_form in formset.initial_forms:
            layer = layer_form.instance
            layer.schedule = schedule
            if id(layer_form) in deleted:
                oncall.delete_layer(layer, actor=request.user)
                formset.deleted_objects.append(layer)
                continue
            if not layer_form.has_changed():
                continue
            changes = {
                name: layer_form.cleaned_data[name]
                for name in layer_form.changed_data
                if name in oncall.LAYER_FIELDS
            }
            for name in changes:
                setattr(layer, name, layer_form.initial.get(name))
            participants = (
                layer_form.cleaned_data["participant_usernames"]
                if "participant_usernames" in layer_form.changed_data
                else None
            )
            oncall.update_layer(layer, actor=request.user, participants=participants, **changes)
            formset.changed_objects.append((layer, layer_form.changed_data))
        for layer_form in formset.extra_forms:
            if id(layer_form) in deleted or not layer_form.has_changed():
                continue
            data = layer_form.cleaned_data
            options = {k: data[k] for k in oncall.LAYER_FIELDS if k not in ("name", "rotation")}
            layer = oncall.add_layer(
                schedule,
                name=data["name"],
                rotation=data["rotation"],
                participants=data["participant_usernames"],
                actor=request.user,
                **{k: v for k, v in options.items() if v is not None},
            )
            formset.new_objects.append(layer)

    def _save_overrides(self, request: HttpRequest, schedule: Schedule, formset: Any) -> None:
        deleted = {id(f) for f in formset.deleted_forms}
        for override_form in formset.initial_forms:
            if id(override_form) in deleted:
                override = override_form.instance
                override.schedule = schedule
                oncall.delete_override(override, actor=request.user)
                formset.deleted_objects.append(override)
        for override_form in formset.extra_forms:
            if id(override_form) in deleted or not override_form.has_changed():
                continue
            data = override_form.cleaned_data
            override = oncall.create_override(
                schedule,
                data["user"],
                data["start"],
                data["end"],
                actor=request.user,
                reason=data.get("reason", ""),
            )
            formset.new_objects.append(override)

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        self.ensure_manages(request, obj)
        oncall.delete_schedule(obj, actor=request.user)
