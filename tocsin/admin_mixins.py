"""Building blocks for the admin of team-owned models (teams, monitoring, incidents, probes, …).

Django's admin asks ``user.has_perm()`` (model permissions, ``is_staff``) by default. Tocsin does
not hand out model permissions: who may see and change what is decided by team roles in
``tocsin.permissions``. ``TeamScopedAdmin`` wires every admin hook (querysets, object
permissions, team choices, saving) to that module, so a team manager without ``is_staff`` sees
and edits exactly their teams' rows, and an app's admin is a few declarative lines::

    @admin.register(Probe)
    class ProbeAdmin(TeamScopedAdmin, admin.ModelAdmin):
        list_display = ("name", "team", "kind")

Writes should go through the app's services so the event log records them: override
``save_model``/``delete_model`` to call them (``adopt`` hands a created row back to the admin).
``ServiceBackedAdmin`` turns a service's refusal (``ServiceError``) into a form error instead of
a crash. Inlines under a team-owned parent use ``TeamScopedInline``; a user picker for managers
is opened with ``admin.site.allow_user_search(Model, "field")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models, transaction
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tocsin.permissions import Action, can, is_admin, may_use_admin, scope, teams_for
from tocsin.services import ServiceError

# Where a service's refusal waits on the request for the form to pick it up (see changeform_view).
_PENDING_ERROR = "_tocsin_admin_service_error"


def error_message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def add_error_to_form(form: BaseForm, exc: Exception) -> None:
    """Show ``exc`` next to the field it names, or above the form when the form lacks it."""
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else None, error_message(exc))


def adopt(target: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved instance the row a service just created.

    The admin keeps using the instance it built from the form (inline formsets are bound to it,
    the redirect and the change message read it), while services create and return their own.
    """
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


@admin.action(permissions=["delete"], description=delete_selected.short_description)
def delete_selected_via_services(
    modeladmin: Any, request: HttpRequest, queryset: models.QuerySet
) -> HttpResponse | None:
    """Django's "delete selected" (with its confirmation page), all or nothing.

    Each row goes through ``delete_model`` (the service); if a service refuses one of them, the
    whole batch rolls back and the refusal is shown instead of a half-done deletion.
    """
    try:
        with transaction.atomic():
            return delete_selected(modeladmin, request, queryset)
    except modeladmin.service_errors as exc:
        modeladmin.message_user(request, error_message(exc), messages.ERROR)
        return None


class ServiceBackedAdmin:
    """A ModelAdmin mixin for admins whose writes go through services that may refuse.

    Subclasses override ``save_model``/``save_related``/``delete_model`` to call services. A
    refusal raised while saving rolls the whole admin transaction back (including any event
    already recorded); the form is then validated again with the refusal attached, so the user
    sees their input and the reason, exactly like any other validation error.
    """

    service_errors: tuple[type[Exception], ...] = (ServiceError,)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except self.service_errors as exc:
            if request.method != "POST":
                raise
            setattr(request, _PENDING_ERROR, exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except self.service_errors as exc:
            self.message_user(request, error_message(exc), messages.ERROR)
            opts = self.model._meta
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change",
                args=[object_id],
                current_app=self.admin_site.name,
            )
            return HttpResponseRedirect(url)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        """Bulk deletion is one ``delete_model`` (one service call, one event) per row."""
        for obj in queryset:
            self.delete_model(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (delete_selected_via_services, name, description)
        return actions

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[BaseForm]:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        # modelform_factory builds a new class on every call, so patching it affects this
        # request only (a subclass would make Django build every form field a second time).
        base_clean: Callable[[BaseForm], Any] = form_class.clean

        def clean(form: BaseForm) -> Any:
            cleaned = base_clean(form)
            self.clean_admin_form(request, form, obj)
            pending = getattr(request, _PENDING_ERROR, None)
            if pending is not None:
                add_error_to_form(form, pending)
            return cleaned

        form_class.clean = clean
        return form_class

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        """Hook: validate the main form with the request at hand (add errors to ``form``)."""


class TeamListFilter(admin.SimpleListFilter):
    """Filter by team, offering only the teams this user may see here.

    Django's related-field filter would list every team's name, including teams the manager
    has nothing to do with.
    """

    title = "team"
    parameter_name = "team"
    NO_TEAM = "none"

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        self.team_field = getattr(model_admin, "team_field", "team")
        self.action = getattr(model_admin, "view_action", Action.MANAGE)
        try:
            self.nullable = bool(model._meta.get_field(self.team_field).null)
        except FieldDoesNotExist:  # a path through another model ("service__team")
            self.nullable = False
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        choices = [
            (str(pk), name)
            for pk, name in teams_for(request.user, self.action).values_list("pk", "name")
        ]
        if self.nullable and is_admin(request.user):
            choices.append((self.NO_TEAM, "No team"))
        return choices

    def queryset(self, request: HttpRequest, queryset: models.QuerySet) -> models.QuerySet:
        value = self.value()
        if value == self.NO_TEAM and self.nullable and is_admin(request.user):
            return queryset.filter(**{f"{self.team_field}__isnull": True})
        if value and value.isdigit():
            return queryset.filter(**{self.team_field: int(value)})
        return queryset


class TeamScopedAdmin(ServiceBackedAdmin):
    """A ModelAdmin mixin for team-owned models; every decision comes from ``tocsin.permissions``.

    - Superusers see and change everything; managers see the rows of the teams where they may
      ``view_action`` (MANAGE by default) and change those of the teams they manage.
    - ``team`` choices on forms are the teams the user manages, and saving re-checks it.
    - Module and list access follow ``may_use_admin`` (superusers and managers), not is_staff.

    The model exposes its team as ``team``/``team_id`` (what ``permissions.can`` reads);
    ``team_field`` is the lookup used to scope querysets (``"pk"`` for Team itself).
    """

    team_field: str = "team"
    view_action: Action = Action.MANAGE
    not_your_team_message = "You do not manage this team."

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = super().get_queryset(request)
        return scope(queryset, request.user, self.view_action, self.team_field)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_use_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return may_use_admin(request.user)
        return can(request.user, self.view_action, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may_use_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return may_use_admin(request.user)
        return can(request.user, Action.MANAGE, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == self.team_field:
            kwargs["queryset"] = teams_for(request.user, Action.MANAGE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        team = form.cleaned_data.get(self.team_field) if self.team_field in form.fields else None
        if team is not None and not can(request.user, Action.MANAGE, team):
            form.add_error(self.team_field, self.not_your_team_message)

    def ensure_manages(self, request: HttpRequest, obj: Any) -> None:
        """The last line: never write a row into (or out of) a team the user does not manage."""
        if not can(request.user, Action.MANAGE, obj):
            raise PermissionDenied(self.not_your_team_message)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.ensure_manages(request, obj)
        super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.ensure_manages(request, obj)
        super().delete_model(request, obj)


class TeamScopedInline:
    """An InlineModelAdmin mixin: rows belong to the parent's team, so the parent decides.

    Without it Django would ask ``has_perm`` and hide (or freeze) the inline for managers.
    """

    view_action: Action = Action.MANAGE

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return may_use_admin(request.user)
        return can(request.user, self.view_action, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return may_use_admin(request.user)
        return can(request.user, Action.MANAGE, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return TeamScopedInline.has_add_permission(self, request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return TeamScopedInline.has_add_permission(self, request, obj)


class SuperuserReadOnlyAdmin:
    """A ModelAdmin mixin for operational tables only superusers look at, and nobody edits."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_admin(request.user)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
