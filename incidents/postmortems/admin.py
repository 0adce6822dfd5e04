"""Admin for postmortems, with their action items inline.

Team-scoped like the rest (``TeamScopedAdmin``): superusers see everything, managers the
postmortems of the teams they manage. Postmortems are started from the incident page or the API
(they are prefilled from the incident's timeline), not here. Every save goes through
``incidents.postmortems.services``, so the event log records it and the same rules hold: a published
postmortem's narrative is read-only until its status goes back to draft, owners must be members
of the incident's team.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.forms import BaseForm
from django.http import HttpRequest
from django.utils.html import format_html

from incidents.models import ActionItem, ActionItemStatus, Postmortem
from incidents.postmortems import services as postmortems
from tocsin.admin_mixins import Operation, TeamListFilter, TeamScopedAdmin, TeamScopedInline

admin.site.allow_user_search(ActionItem, "owner")


class ActionItemForm(forms.ModelForm):
    tracker_url = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = ActionItem
        fields = postmortems.ITEM_FIELDS


class ActionItemInline(TeamScopedInline, admin.TabularInline):
    model = ActionItem
    form = ActionItemForm
    fields = postmortems.ITEM_FIELDS
    autocomplete_fields = ("owner",)
    team_scoped_fields = {"owner": "memberships__team"}  # owners are members of the team
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("owner").order_by("position", "id")


@admin.register(Postmortem)
class PostmortemAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ("__str__", "incident_title", "team", "status", "open_items", "updated_at")
    list_filter = (TeamListFilter, "status")
    list_select_related = ("team", "incident")
    search_fields = ("incident__title", "=incident__id", "summary")
    date_hierarchy = "created_at"
    inlines = [ActionItemInline]
    # Started from the incident (page or API), prefilled from its timeline.
    refused_operations = (Operation.ADD,)
    fields = (
        "page_link",
        "incident",
        "team",
        "status",
        "summary",
        "impact",
        "root_cause",
        "contributing_factors",
        "timeline",
        "author",
        ("created_at", "updated_at", "published_at"),
    )
    readonly_fields = (
        "page_link",
        "incident",
        "team",
        "author",
        "created_at",
        "updated_at",
        "published_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_count=Count(
                    "action_items", filter=Q(action_items__status=ActionItemStatus.OPEN)
                )
            )
        )

    @admin.display(description="incident", ordering="incident__title")
    def incident_title(self, postmortem: Postmortem) -> str:
        return postmortem.incident.title

    @admin.display(description="open action items", ordering="open_count")
    def open_items(self, postmortem: Postmortem) -> int:
        return getattr(postmortem, "open_count", 0)

    @admin.display(description="page")
    def page_link(self, postmortem: Postmortem) -> str:
        return format_html(
            '<a href="{}">Open the postmortem page</a>', postmortem.get_absolute_url()
        )

    def save_model(self, request: HttpRequest, obj: Any, form: BaseForm, change: bool) -> None:
        self.ensure_manages(request, obj)
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in postmortems.EDITABLE_FIELDS
        }
        status = form.cleaned_data["status"] if "status" in form.changed_data else None
        postmortems.save(obj, actor=request.user, status=status, **changes)

    def save_related(
        self, request: HttpRequest, form: BaseForm, formsets: list[Any], change: bool
    ) -> None:
        postmortem = form.instance
        for formset in formsets:
            if formset.model is not ActionItem:
                continue
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            deleted = {id(f) for f in formset.deleted_forms}
            for item_form in formset.initial_forms:
                item = item_form.instance
                item.postmortem = postmortem
                if id(item_form) in deleted:
                    postmortems.delete_action_item(item, actor=request.user)
                    formset.deleted_objects.append(item)
                elif item_form.has_changed():
                    changes = {
                        name: item_form.cleaned_data[name]
                        for name in item_form.changed_data
                        if name in postmortems.ITEM_FIELDS
                    }
                    postmortems.update_action_item(item, actor=request.user, **changes)
                    formset.changed_objects.append((item, item_form.changed_data))
            for item_form in formset.extra_forms:
                if id(item_form) in deleted or not item_form.has_changed():
                    continue
                data = item_form.cleaned_data
                item = postmortems.add_action_item(
                    postmortem,
                    actor=request.user,
                    title=data["title"],
                    owner=data.get("owner"),
                    due_date=data.get("due_date"),
                    tracker_url=data.get("tracker_url") or "",
                )
                if data.get("status") == ActionItemStatus.DONE:
                    postmortems.complete_action_item(item, actor=request.user)
                formset.new_objects.append(item)
