"""Building blocks for the admin of team-owned models (teams, monitoring, incidents, probes, …).

Django's admin asks ``user.has_perm()`` (model permissions, ``is_staff``) by default. Tocsin does
not hand out model permissions: who may see and change what is decided by team roles in
``tocsin.permissions``. ``TeamScopedAdmin`` wires every admin hook (querysets, object
permissions, team choices, saving) to that module, so a team manager without ``is_staff`` sees
and edits exactly their teams' rows, and an app's admin is a few declarative lines::

    @admin.register(Probe)
    class ProbeAdmin(TeamScopedAdmin, admin.ModelAdmin):
        list_display = ("name", "team", "kind")
        team_scoped_fields = {"service": "team"}  # pick only services of the probe's team

    @admin.register(ProbeResult)
    class ProbeResultAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
        view_action = Action.VIEW

What an admin never offers is declared, not coded: ``ReadOnlyAdmin`` (rows the system writes),
``AddOnlyAdmin`` (rows added and then left alone), or ``refused_operations`` with the reason
next to it; who may do the rest is asked of ``tocsin.permissions``. Foreign keys to other
team-owned rows are scoped with ``team_scoped_fields`` (see ``TeamScopedFields``).

Writes should go through the app's services so the event log records them: override
``save_model``/``delete_model`` to call them (``adopt`` hands a created row back to the admin).
``ServiceBackedAdmin`` turns a service's refusal (``ServiceError``) into a form error instead of
a crash. Inlines under a team-owned parent use ``TeamScopedInline``; a user picker for managers
is opened with ``admin.site.allow_user_search(Model, "field")``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models, transaction
from django.forms import BaseForm, BaseFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tocsin.admin_return import ReturnsToNext
from tocsin.permissions import (
    Action,
    can,
    is_admin,
    may_use_admin,
    scope,
    team_id_of,
    team_ids_for,
    teams_for,
)
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


def extend_clean(form_class: type[BaseForm], check: Callable[[BaseForm], None]) -> None:
    """Run ``check(form)`` after the form's own ``clean``.

    Django's factories (``modelform_factory``, ``inlineformset_factory``) build a new form class on
    every call, so patching it affects this request only (a subclass would make Django build
    every form field a second time).
    """
    base_clean: Callable[[BaseForm], Any] = form_class.clean

    def clean(form: BaseForm) -> Any:
        cleaned = base_clean(form)
        check(form)
        return cleaned

    form_class.clean = clean  # type: ignore[method-assign]


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
    # Records a row owns and its delete service removes with it (a heartbeat's pings, a check's
    # results): read-only in their own admins, they must not make the row undeletable (Django
    # asks for delete permission on every related row before it deletes).
    owned_records: tuple[type[models.Model], ...] = ()

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for model in self.owned_records:
            perms_needed.discard(model._meta.verbose_name)
        return deleted, counts, perms_needed, protected

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

        def check(form: BaseForm) -> None:
            self.clean_admin_form(request, form, obj)
            pending = getattr(request, _PENDING_ERROR, None)
            if pending is not None:
                add_error_to_form(form, pending)

        extend_clean(form_class, check)
        return form_class

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        """Hook: validate the main form with the request at hand (add errors to ``form``)."""


# -- what an admin offers at all -----------------------------------------------------------------
class Operation(StrEnum):
    ADD = "add"
    CHANGE = "change"
    DELETE = "delete"


class DeclaredOperations:
    """Which writes an admin offers, declared once; ``TeamScopedAdmin``, ``TeamScopedInline`` and
    ``SuperuserAdmin`` honour it before asking ``tocsin.permissions`` who may do the rest.

    An operation in ``refused_operations`` is refused to everyone, superusers included (say why
    next to the declaration); one in ``superuser_operations`` is left to superusers.
    """

    refused_operations: tuple[Operation, ...] = ()
    superuser_operations: tuple[Operation, ...] = ()
    # Keeps "change" on the list page (no object) of rows that are otherwise refused it: for an
    # admin whose list actions change rows through services (acknowledge, resolve selected).
    changes_through_actions: bool = False

    def offers(self, request: HttpRequest, operation: Operation, obj: Any = None) -> bool:
        if operation in self.refused_operations:
            return operation is Operation.CHANGE and obj is None and self.changes_through_actions
        return operation not in self.superuser_operations or is_admin(request.user)

    def may_write(self, request: HttpRequest, obj: Any) -> bool:
        """Who may write what is offered: managers of ``obj``'s team (of the parent's, for an
        inline); with no object, anyone who uses the admin (the list, the add page)."""
        if obj is None:
            return may_use_admin(request.user)
        return can(request.user, Action.MANAGE, obj)

    # ``obj`` is the row (ModelAdmin; Django passes none to has_add_permission) or the parent
    # (InlineModelAdmin).
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.offers(request, Operation.ADD, obj) and self.may_write(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.offers(request, Operation.CHANGE, obj) and self.may_write(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.offers(request, Operation.DELETE, obj) and self.may_write(request, obj)


class ReadOnlyAdmin(DeclaredOperations):
    """Rows the system writes (alerts, the event log, deliveries, series): shown, never added,
    changed or deleted through the admin, by anyone."""

    refused_operations = (Operation.ADD, Operation.CHANGE, Operation.DELETE)


class AddOnlyAdmin(DeclaredOperations):
    """Rows added here and left alone afterwards (empty "add a member" rows; history)."""

    refused_operations = (Operation.CHANGE, Operation.DELETE)


# -- foreign keys to other team-owned rows --------------------------------------------------------
def _team_attname(model: type[models.Model], team_path: str) -> str | None:
    """The column holding the team when ``team_path`` is a foreign key of ``model`` itself."""
    try:
        field = model._meta.get_field(team_path)
    except FieldDoesNotExist:
        return None
    return field.attname if field.many_to_one else None


def scoped_rows(model: type[models.Model], user: Any, team_path: str) -> models.QuerySet:
    """The rows of ``model`` in the teams ``user`` manages; ``team_path`` leads from a row to its
    team (``"team"``, or ``"memberships__team"`` for users)."""
    rows = model._default_manager.all()
    if _team_attname(model, team_path) is not None:
        return scope(rows.select_related(team_path), user, Action.MANAGE, team_path)
    if team_ids_for(user, Action.MANAGE) is None:
        return rows
    # Through a to-many relation (a user's memberships) a row matches once per team: by id, so
    # each is offered once and a chosen id finds exactly one row.
    return rows.filter(pk__in=scope(rows, user, Action.MANAGE, team_path).values("pk"))


def in_team(row: models.Model, team_path: str, team_id: int) -> bool:
    attname = _team_attname(type(row), team_path)
    if attname is not None:
        return getattr(row, attname) == team_id
    return type(row)._default_manager.filter(pk=row.pk, **{team_path: team_id}).exists()


class TeamScopedFields:
    """Declarative scoping of foreign keys to other team-owned rows (admins and inlines).

    ``team_scoped_fields = {"service": "team", "user": "memberships__team"}`` names each foreign
    key with the lookup from the row it points to, to that row's team. The field offers only
    rows of the teams the user manages, so a POST naming any other row (a forged id) is refused
    by the field itself; a row of a team other than the edited row's is refused with an error
    on the field. Override ``team_scoped_choices`` to narrow the choices further.
    """

    team_scoped_fields: Mapping[str, str] = {}

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        team_path = self.team_scoped_fields.get(db_field.name)
        if team_path is not None and "queryset" not in kwargs:
            kwargs["queryset"] = self.team_scoped_choices(db_field, request)
            noun = db_field.related_model._meta.verbose_name
            refusal = f"Choose a {noun} of a team you manage."
            if _team_attname(db_field.related_model, team_path) is None:
                refusal = f"This {noun} is not a member of a team you manage."
            kwargs.setdefault("error_messages", {"invalid_choice": refusal})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def team_scoped_choices(self, db_field: Any, request: HttpRequest) -> models.QuerySet:
        team_path = self.team_scoped_fields[db_field.name]
        return scoped_rows(db_field.related_model, request.user, team_path)

    def check_team_scoped_fields(self, form: BaseForm, team_id: int | None) -> None:
        """Refuse a chosen row that is not in ``team_id`` (the edited row's team, when known)."""
        if team_id is None:
            return
        for name, team_path in self.team_scoped_fields.items():
            row = form.cleaned_data.get(name) if name in form.fields else None
            if row is not None and not in_team(row, team_path, team_id):
                noun = row._meta.verbose_name
                where = "belongs to another team"
                if _team_attname(type(row), team_path) is None:
                    where = "is not a member of this team"  # a user, through memberships
                form.add_error(name, f"This {noun} {where}.")


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
        if value and value.isdecimal():
            return queryset.filter(**{self.team_field: int(value)})
        return queryset


class TeamScopedAdmin(TeamScopedFields, DeclaredOperations, ReturnsToNext, ServiceBackedAdmin):
    """A ModelAdmin mixin for team-owned models; every decision comes from ``tocsin.permissions``.

    - Superusers see and change everything; managers see the rows of the teams where they may
      ``view_action`` (MANAGE by default) and change those of the teams they manage.
    - ``team`` choices on forms are the teams the user manages, and saving re-checks it; other
      foreign keys to team-owned rows are scoped by ``team_scoped_fields``.
    - A form opened with ``?next=`` returns there after "Save" (``ReturnsToNext``).
    - Module and list access follow ``may_use_admin`` (superusers and managers), not is_staff;
      writes the admin never offers are declared (``refused_operations``, ``ReadOnlyAdmin``).

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

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == self.team_field:
            kwargs["queryset"] = teams_for(request.user, Action.MANAGE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        team = form.cleaned_data.get(self.team_field) if self.team_field in form.fields else None
        if team is not None and not can(request.user, Action.MANAGE, team):
            form.add_error(self.team_field, self.not_your_team_message)
        self.check_team_scoped_fields(form, self.team_of_form(form, obj))

    def team_of_form(self, form: BaseForm, obj: Any) -> int | None:
        """The edited row's team: its team field, the field it comes through (``team_field =
        "service__team"``: the chosen service's), else the stored row's; None while unknown."""
        head = self.team_field.split("__", 1)[0]
        if head in form.fields:
            chosen = form.cleaned_data.get(head)
            return None if chosen is None else team_id_of(chosen)
        return None if obj is None else team_id_of(obj)

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


class TeamScopedInline(TeamScopedFields, DeclaredOperations):
    """An InlineModelAdmin mixin: rows belong to the parent's team, so the parent decides.

    Without it Django would ask ``has_perm`` and hide (or freeze) the inline for managers.
    ``team_scoped_fields`` rows must be of the parent's team (checked once the parent exists;
    before that, the service creating both refuses a stranger).
    """

    view_action: Action = Action.MANAGE

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return may_use_admin(request.user)
        return can(request.user, self.view_action, obj)

    def get_formset(
        self, request: HttpRequest, obj: Any = None, **kwargs: Any
    ) -> type[BaseFormSet]:
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]
        if self.team_scoped_fields and obj is not None:
            team_id = team_id_of(obj)
            extend_clean(formset.form, lambda form: self.check_team_scoped_fields(form, team_id))
        return formset


class SuperuserAdmin(DeclaredOperations):
    """A ModelAdmin mixin for operational tables only superusers look at (tokens, workers)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_admin(request.user)

    def may_write(self, request: HttpRequest, obj: Any) -> bool:
        return is_admin(request.user)
