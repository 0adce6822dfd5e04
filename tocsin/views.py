"""The web UI: thin views over ``tocsin.services`` and ``tocsin.permissions``.

Every check happens here on the server, whatever the templates show or hide. Someone who may not
see a team gets a 404 for everything under it (its existence is not confirmed); a member whose
role is too low for an action gets a 403.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.utils import timezone
from django.views.decorators.http import require_POST

from tocsin import services
from tocsin.auth import PasswordChangeForm
from tocsin.forms import (
    AddMemberForm,
    RoleForm,
    TeamCreateForm,
    TeamForm,
    TokenForm,
    add_service_error,
)
from tocsin.models import ApiToken, Event, Membership, Role, Team
from tocsin.permissions import Action, can, forget_roles, is_admin, roles_of, teams_for

LIVE_PAGE_SIZE = 50
RECENT = timedelta(hours=24)
ROLE_RANK = {Role.MANAGER: 0, Role.RESPONDER: 1, Role.VIEWER: 2}


# -- helpers -------------------------------------------------------------------------------------
def _team_or_404(request: HttpRequest, slug: str, action: Action = Action.VIEW) -> Team:
    """The team if the user may see it (else 404) and do ``action`` to it (else 403)."""
    team = Team.objects.filter(slug=slug).first()
    if team is None or not can(request.user, Action.VIEW, team):
        raise Http404("no such team")
    if not can(request.user, action, team):
        raise PermissionDenied(f"your role in {team} does not allow this")
    return team


def _teams_with_roles(user: Any) -> list[Team]:
    """The teams the user sees, each with ``role`` and ``recent_events`` (last 24 hours)."""
    since = timezone.now() - RECENT
    recent = (
        Event.objects.filter(team=OuterRef("pk"), created_at__gte=since)
        .order_by()
        .values("team")
        .annotate(n=Count("id"))
        .values("n")
    )
    teams = list(
        teams_for(user, Action.VIEW).annotate(
            member_count=Count("memberships"),
            recent_events=Coalesce(Subquery(recent), 0),
        )
    )
    roles = roles_of(user)
    for team in teams:
        team.role = roles.get(team.pk, "admin" if is_admin(user) else "")
    return teams


# -- pages ---------------------------------------------------------------------------------------
@login_required
def live(request: HttpRequest) -> HttpResponse:
    teams = list(teams_for(request.user, Action.VIEW))
    selected = None
    events = Event.objects.visible_to(request.user).select_related("team")
    slug = request.GET.get("team")
    if slug:
        selected = next((t for t in teams if t.slug == slug), None)
        if selected is None:
            raise Http404("no such team")
        events = events.filter(team=selected)
    events = list(events[:LIVE_PAGE_SIZE])
    return render(
        request,
        "tocsin/live.html",
        {
            "teams": teams,
            "selected": selected,
            "events": events,
            "last_event_id": events[0].pk if events else 0,
        },
    )


# -- teams ---------------------------------------------------------------------------------------
def may_create_teams(user: Any) -> bool:
    """Staff and superusers create teams; team managers then run them."""
    return bool(user.is_active and (user.is_staff or user.is_superuser))


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    return _render_teams(request)


def _render_teams(
    request: HttpRequest, form: TeamCreateForm | None = None, status: int = 200
) -> HttpResponse:
    user = request.user
    if form is None and may_create_teams(user):
        form = TeamCreateForm()
    context = {"teams": _teams_with_roles(user), "create_form": form}
    return render(request, "tocsin/teams.html", context, status=status)


@login_required
@require_POST
def team_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not may_create_teams(user):
        raise PermissionDenied("only staff create teams")
    form = TeamCreateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            manager = (
                services.user_by_username(data["manager"].strip()) if data["manager"] else None
            )
            with transaction.atomic():
                team = services.create_team(
                    data["name"], actor=user, description=data["description"]
                )
                if manager is None and not user.is_superuser:
                    manager = user  # staff see only their teams: they run the new one
                if manager is not None:
                    services.add_member(team, manager, Role.MANAGER, actor=user)
        except services.ServiceError as error:
            add_service_error(form, error, {"username": "manager"})
        else:
            if not can(user, Action.VIEW, team):
                # Staff who named someone else its manager do not see the team themselves.
                messages.success(request, f"Team “{team.name}” created for its manager.")
                return redirect("teams")
            messages.success(request, f"Team “{team.name}” created. Add its members below.")
            return redirect("team", slug=team.slug)
    return _render_teams(request, form, status=400)


def _render_team(
    request: HttpRequest,
    team: Team,
    *,
    status: int = 200,
    team_form: TeamForm | None = None,
    add_form: AddMemberForm | None = None,
    member_errors: dict[int, list[str]] | None = None,
) -> HttpResponse:
    user = request.user
    memberships = sorted(
        team.memberships.select_related("user"),
        key=lambda m: (ROLE_RANK.get(m.role, 9), m.user.get_username().lower()),
    )
    member_errors = member_errors or {}
    for membership in memberships:
        membership.errors = member_errors.get(membership.pk, [])
    can_manage = can(user, Action.MANAGE, team)
    return render(
        request,
        "tocsin/team.html",
        {
            "team": team,
            "memberships": memberships,
            "my_role": roles_of(user).get(team.pk, "admin" if is_admin(user) else ""),
            "can_manage": can_manage,
            "can_respond": can(user, Action.RESPOND, team),
            "team_form": team_form or (TeamForm(team=team) if can_manage else None),
            "add_form": add_form or (AddMemberForm() if can_manage else None),
            "roles": Role.choices,
        },
        status=status,
    )


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_team(request, _team_or_404(request, slug))


@login_required
@require_POST
def team_update(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug, Action.MANAGE)
    form = TeamForm(request.POST, team=team)
    if form.is_valid():
        try:
            services.update_team(
                team,
                actor=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                require_two_factor=form.cleaned_data["require_two_factor"],
            )
        except services.ServiceError as exc:  # e.g. a concurrent rename took the name
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, "Team details saved.")
            return redirect("team", slug=team.slug)
    team.refresh_from_db()
    return _render_team(request, team, status=400, team_form=form)


@login_required
@require_POST
def member_add(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug, Action.MANAGE)
    form = AddMemberForm(request.POST)
    if form.is_valid():
        try:
            user = services.user_by_username(form.cleaned_data["username"].strip())
            services.add_member(team, user, form.cleaned_data["role"], actor=request.user)
        except services.ServiceError as error:
            add_service_error(form, error, {"user": "username"})
        else:
            messages.success(
                request, f"{user.get_username()} joined {team} as {form.cleaned_data['role']}."
            )
            return redirect("team", slug=team.slug)
    return _render_team(request, team, status=400, add_form=form)


def _membership_or_404(team: Team, membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "team"), pk=membership_id, team=team
    )


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    team = _team_or_404(request, slug, Action.MANAGE)
    membership = _membership_or_404(team, membership_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.change_role(membership, form.cleaned_data["role"], actor=request.user)
        except services.ServiceError as error:
            errors = [error.message]
        else:
            messages.success(request, f"{membership.user.get_username()} is now {membership.role}.")
            return _after_membership_change(request, team)
    else:
        errors = [e for field_errors in form.errors.values() for e in field_errors]
    return _render_team(request, team, status=400, member_errors={membership.pk: errors})


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    team = _team_or_404(request, slug, Action.MANAGE)
    membership = _membership_or_404(team, membership_id)
    try:
        services.remove_member(membership, actor=request.user)
    except services.ServiceError as error:
        return _render_team(
            request, team, status=400, member_errors={membership.pk: [error.message]}
        )
    messages.success(request, f"{membership.user.get_username()} left {team}.")
    return _after_membership_change(request, team)


def _after_membership_change(request: HttpRequest, team: Team) -> HttpResponse:
    """Back to the team page, or to the team list when the user just gave up their access."""
    forget_roles(request.user)  # the service forgot the roles of its own copy of the user
    if can(request.user, Action.VIEW, team):
        return redirect("team", slug=team.slug)
    return redirect("teams")


@login_required
@require_POST
def team_test_event(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(request, slug, Action.RESPOND)
    services.request_test_event(team, actor=request.user)
    messages.success(request, "A worker will write a test event; watch Live.")
    return redirect("team", slug=team.slug)


# -- API tokens ----------------------------------------------------------------------------------
@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    created = plaintext = None
    status = 200
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                created, plaintext = services.issue_token(
                    request.user, form.cleaned_data["name"], expires_at=form.expires_at()
                )
            except services.ServiceError as error:
                add_service_error(form, error, {"expires_at": "expires_in"})
                status = 400
            else:
                form = TokenForm()
        else:
            status = 400
    else:
        form = TokenForm()
    response = render(
        request,
        "tocsin/tokens.html",
        {
            "form": form,
            "tokens": ApiToken.objects.filter(user=request.user),
            "created": created,
            "plaintext": plaintext,
        },
        status=status,
    )
    # The one page that ever shows the secret must not be kept by any cache.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.revoke_token(token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked; programs using it are now refused.")
    return redirect("tokens")


# -- password ------------------------------------------------------------------------------------
class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's page, with the old password counted as a sign-in (``tocsin.auth``)."""

    form_class = PasswordChangeForm
    template_name = "tocsin/auth/password_change.html"

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


password_change = PasswordChangeView.as_view()


# -- errors --------------------------------------------------------------------------------------
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "not_found", "message": "no such endpoint", "fields": {}}},
            status=404,
        )
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "internal error", "fields": {}}},
            status=500,
        )
    # No request context: whatever broke (the database, a context processor) may break it again.
    return HttpResponse(loader.get_template("500.html").render(), status=500)
