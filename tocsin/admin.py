"""Admin for the core models.

Who sees what:
- Teams, memberships: superusers everything; managers their own teams (edit, not create/delete).
- Events: read-only for everyone; managers see their teams' events, superusers also team-less
  ones (sign-ins, tokens).
- API tokens, worker heartbeats: superusers only, read-only (tokens can be revoked).
- Users: superusers everyone; the member picker finds the people of the teams one manages, and
  anyone else by exact username or e-mail only (``TocsinUserAdmin``).

Every change goes through ``tocsin.services`` so the event log records it and domain rules (the
last manager of a team stays) hold here as in the UI and the API.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.forms import BaseForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import slugify

from tocsin import services
from tocsin.admin_mixins import (
    AddOnlyAdmin,
    Operation,
    ReadOnlyAdmin,
    SuperuserAdmin,
    TeamListFilter,
    TeamScopedAdmin,
    TeamScopedInline,
    adopt,
)
from tocsin.events import record
from tocsin.models import (
    ApiToken,
    Event,
    Membership,
    Role,
    SingleSignOnIdentity,
    Team,
    WorkerHeartbeat,
)
from tocsin.permissions import Action, is_admin, team_ids_for

admin.site.allow_user_search(Membership, "user")


# -- teams and memberships ------------------------------------------------------------------------
class MemberInline(TeamScopedInline, admin.TabularInline):
    """The team's current members: change a role, or tick "delete" to remove someone."""

    model = Membership
    fields = ("user", "role", "created_at")
    readonly_fields = ("user", "created_at")
    extra = 0
    verbose_name = "member"
    verbose_name_plural = "members"
    # New members come through NewMemberInline (the user is fixed once added).
    refused_operations = (Operation.ADD,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("team", "user")  # row labels


class NewMemberInline(AddOnlyAdmin, TeamScopedInline, admin.TabularInline):
    """Empty rows to add people; a separate inline so existing rows keep their user fixed."""

    model = Membership
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    extra = 1
    verbose_name = "new member"
    verbose_name_plural = "add members"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).none()


def _membership_changes(
    formsets: list[Any],
) -> tuple[list[tuple[Any, str]], list[tuple[Membership, str]], list[Membership]]:
    """What the membership rows ask for: (adds, role changes, removals), nothing saved yet.

    The forms have already copied their input onto the instances; the roles are put back so the
    services see the state before the change (they compare, record "before → after" and apply
    the last-manager rule to it).
    """
    adds: list[tuple[Any, str]] = []
    role_changes: list[tuple[Membership, str]] = []
    removals: list[Membership] = []
    for formset in formsets:
        deleted = set(map(id, formset.deleted_forms))
        for form in formset.initial_forms:
            membership = form.instance
            before = form.initial.get("role", membership.role)
            new_role = form.cleaned_data.get("role", before)
            membership.role = before
            if id(form) in deleted:
                removals.append(membership)
            elif new_role != membership.role:
                role_changes.append((membership, new_role))
        for form in formset.extra_forms:
            if id(form) in deleted or not form.has_changed() or not form.cleaned_data:
                continue
            adds.append((form.cleaned_data["user"], form.cleaned_data["role"]))
    return adds, role_changes, removals


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin, admin.ModelAdmin):
    team_field = "pk"
    list_display = ("name", "slug", "member_count", "created_at")
    search_fields = ("name", "slug", "description")
    fields = ("name", "slug", "description", "require_two_factor", "created_at")
    readonly_fields = ("slug", "created_at")
    inlines = (MemberInline, NewMemberInline)
    superuser_operations = (Operation.ADD, Operation.DELETE)  # managers run the teams they have

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, team: Team) -> int:
        return team.member_count

    def clean_admin_form(self, request: HttpRequest, form: BaseForm, obj: Any) -> None:
        super().clean_admin_form(request, form, obj)
        name = form.cleaned_data.get("name")
        # The slug is derived from the name when a team is created (and kept afterwards).
        if obj is None and name and Team.objects.filter(slug=slugify(name)[:100]).exists():
            form.add_error("name", "A team with a name this similar already exists.")

    def save_model(self, request: HttpRequest, obj: Team, form: BaseForm, change: bool) -> None:
        if not change:
            self.ensure_superuser(request)
            team = services.create_team(obj.name, actor=request.user, description=obj.description)
            adopt(obj, team)
            return
        self.ensure_manages(request, obj)
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in ("name", "description")
        }
        for name in changes:  # the form already applied them; the service records before/after
            setattr(obj, name, form.initial[name])
        services.update_team(obj, actor=request.user, **changes)

    def save_related(
        self, request: HttpRequest, form: BaseForm, formsets: list[Any], change: bool
    ) -> None:
        """Apply membership rows through the services, in an order the last-manager rule allows.

        New members and promotions first, then demotions, then removals: "promote Bea, demote
        Al" in one save is fine, and it is refused only if the team would end without a manager.
        """
        team = form.instance
        membership_formsets = [fs for fs in formsets if fs.model is Membership]
        for formset in formsets:
            if formset.model is not Membership:
                self.save_formset(request, form, formset, change)
        adds, role_changes, removals = _membership_changes(membership_formsets)
        role_changes.sort(key=lambda item: item[1] != Role.MANAGER)  # promotions first
        added = [services.add_member(team, user, role, actor=request.user) for user, role in adds]
        for membership, role in role_changes:
            services.change_role(membership, role, actor=request.user)
        for membership in removals:
            services.remove_member(membership, actor=request.user)
        # What Django's change message and history read (formset.save() would have set these).
        for formset in membership_formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if membership_formsets:
            summary = membership_formsets[0]
            summary.new_objects = added
            summary.changed_objects = [(m, ["role"]) for m, _role in role_changes]
            summary.deleted_objects = removals

    def ensure_superuser(self, request: HttpRequest) -> None:
        if not is_admin(request.user):
            raise PermissionDenied("only administrators create or delete teams")

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, ...]:
        """A team with history cannot be deleted: its events are kept (the log is append-only).

        Said up front and cheaply: Django would otherwise list every protected event.
        """
        teams = list(objs)
        counts = dict(
            Event.objects.filter(team__in=[team.pk for team in teams])
            .order_by()
            .values("team")
            .annotate(n=Count("id"))
            .values_list("team", "n")
        )
        if counts:
            protected = [
                f"{team}: {counts[team.pk]} recorded events (the event log is append-only, so "
                "a team with history cannot be deleted)"
                for team in teams
                if team.pk in counts
            ]
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        self.ensure_superuser(request)
        services.delete_team(obj, actor=request.user)


@admin.register(Membership)
class MembershipAdmin(TeamScopedAdmin, admin.ModelAdmin):
    list_display = ("user", "team", "role", "created_at")
    list_filter = (TeamListFilter, "role")
    list_select_related = ("team", "user")
    search_fields = ("user__username", "user__email", "team__name")
    search_help_text = "Search by username, email or team."
    fields = ("team", "user", "role", "created_at")
    autocomplete_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("team", "user")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("created_at",)
        return ("team", "user", "created_at")  # moving a membership = remove + add

    def save_model(
        self, request: HttpRequest, obj: Membership, form: BaseForm, change: bool
    ) -> None:
        self.ensure_manages(request, obj)
        if not change:
            membership = services.add_member(obj.team, obj.user, obj.role, actor=request.user)
            adopt(obj, membership)
            return
        new_role = obj.role
        obj.role = form.initial["role"]
        services.change_role(obj, new_role, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        self.ensure_manages(request, obj)
        services.remove_member(obj, actor=request.user)


# -- people ---------------------------------------------------------------------------------------
User = get_user_model()


class TocsinUserAdmin(UserAdmin):
    """Django's user admin, where only superusers see every account (#14).

    Anyone else who reaches it (a staff account given user permissions) sees, and searches, the
    people of the teams they manage. The member picker (autocomplete) searches the same people;
    someone outside them is found by their exact username or e-mail address only, so a manager
    can add a new colleague they know without being able to list everyone's accounts.
    """

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        managed = team_ids_for(request.user, Action.MANAGE)
        if managed is None:
            return queryset
        return queryset.filter(
            pk__in=Membership.objects.filter(team_id__in=managed).values("user_id")
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term or is_admin(request.user) or request.path != reverse("admin:autocomplete"):
            return found, duplicates
        exact = User._default_manager.filter(Q(username__iexact=term) | Q(email__iexact=term))
        widened = Q(pk__in=found.values("pk")) | Q(pk__in=exact.values("pk"))
        return User._default_manager.filter(widened).order_by(*self.get_ordering(request)), False


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, TocsinUserAdmin)


# -- the event log --------------------------------------------------------------------------------
@admin.register(Event)
class EventAdmin(ReadOnlyAdmin, TeamScopedAdmin, admin.ModelAdmin):
    """The event log, read-only for everyone: it is append-only by design."""

    view_action = Action.VIEW
    list_display = ("id", "created_at", "team", "kind", "subject_label", "actor_label")
    list_display_links = ("id", "kind")
    list_filter = ("kind", TeamListFilter)
    list_select_related = ("team",)
    date_hierarchy = "created_at"
    search_fields = ("kind", "subject_label", "actor_label")
    search_help_text = "Search by kind, subject or actor."
    # Counting the whole log on every page is slow on a big table and tells nobody anything.
    show_full_result_count = False
    fields = (
        "id",
        "created_at",
        "team",
        "kind",
        "subject_type",
        "subject_id",
        "subject_label",
        "actor_label",
        "ip",
        "payload_pretty",
        # The audit chain (tocsin.audit): position in the team's chain and seal.
        "seq",
        "hash",
    )
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_pretty(self, event: Event) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(event.payload, indent=2, sort_keys=True, default=str)
        )


# -- superuser-only operational tables ------------------------------------------------------------
class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "active":
            return queryset.usable()
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin, SuperuserAdmin, admin.ModelAdmin):
    """Tokens are issued by their owner (who alone sees the secret, once); here they are revoked."""

    list_display = ("name", "user", "prefix", "status", "created_at", "expires_at", "last_used_at")
    list_filter = (TokenStatusFilter,)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    search_help_text = "Search by token name, prefix or owner."
    fields = (
        "name",
        "user",
        "prefix",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ("revoke_tokens",)

    @admin.display(description="status")
    def status(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "active" if token.is_active else "expired"

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return is_admin(request.user)

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.revoke_token(token, actor=request.user)
            revoked += 1
        if revoked:
            self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
        else:
            self.message_user(request, "The selected tokens were already revoked.")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin, SuperuserAdmin, admin.ModelAdmin):
    """Proof that scheduled tasks run: each worker cluster writes its row every minute."""

    list_display = ("worker", "started_at", "last_seen_at", "age")
    search_fields = ("worker",)
    ordering = ("-last_seen_at",)
    fields = ("worker", "started_at", "last_seen_at", "age")
    readonly_fields = fields

    @admin.display(description="age", ordering="-last_seen_at")
    def age(self, heartbeat: WorkerHeartbeat) -> str:
        seconds = max(0, int((timezone.now() - heartbeat.last_seen_at).total_seconds()))
        if seconds < 120:
            return f"{seconds} s"
        if seconds < 2 * 3600:
            return f"{seconds // 60} min"
        if seconds < 2 * 86400:
            return f"{seconds // 3600} h"
        return f"{seconds // 86400} d"


@admin.register(SingleSignOnIdentity)
class SingleSignOnIdentityAdmin(SuperuserAdmin, admin.ModelAdmin):
    """Which provider subject signs in to which account (tocsin.oidc). Shown to administrators,
    who may remove a binding — when someone's account at the provider was replaced — so that the
    next sign-in binds again by the verified address; bindings are made only by signing in."""

    refused_operations = (Operation.ADD, Operation.CHANGE)
    list_display = ("user", "issuer", "subject", "created_at")
    search_fields = ("user__username", "user__email", "subject")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    fields = ("user", "issuer", "subject", "created_at")
    readonly_fields = fields

    def delete_model(self, request: HttpRequest, obj: SingleSignOnIdentity) -> None:
        with transaction.atomic():
            record(
                "sso_identity.removed",
                team=None,
                subject=obj.user,
                actor=request.user,
                payload={"issuer": obj.issuer, "subject": obj.subject, "user_id": obj.user_id},
            )
            obj.delete()
