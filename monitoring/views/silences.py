"""Silence pages: the list (active, pending, expired), creating one (from scratch or from an
alert's labels, with a preview of the firing alerts it would mute) and ending one early.

Viewers read; responders create and expire (as in the API and admin). A team the user cannot
see is a 404, a role too low a 403, bad input a 400 with the form's errors and nothing written.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from monitoring.models import Alert, Service, Silence, SilenceState
from monitoring.suppression import create_silence, expire_silence, preview_silence
from monitoring.views.common import CursorField, list_links, paginate, safe_next, team_filter
from monitoring.views.suppression_forms import SilenceForm, matchers_for_labels
from tocsin.forms import add_service_error
from tocsin.models import Team
from tocsin.permissions import Action, can, scope, team_ids_for, teams_for
from tocsin.services import ServiceError

SILENCES_PAGE_SIZE = 50
STATE_CHOICES = [(s.value, s.label) for s in SilenceState]
# Active and pending silences by when they end (soonest first would need a second index);
# expired ones by when they ended: both newest first, paged by keyset.
ORDER_FIELD = {"active": "starts_at", "pending": "starts_at", "expired": "ends_at"}


class SilenceFilterForm(forms.Form):
    state = forms.ChoiceField(choices=STATE_CHOICES, required=False)
    team = forms.SlugField(required=False)
    silence = forms.IntegerField(required=False, min_value=1)
    cursor = CursorField(required=False)


def _list_context(request: HttpRequest) -> tuple[dict[str, Any], int]:
    user = request.user
    form = SilenceFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    teams, selected_team = team_filter(user, data.get("team"))
    now = timezone.now()
    rows = scope(Silence.objects.all(), user, Action.VIEW)
    if selected_team is not None:
        rows = rows.filter(team=selected_team)
    state = data.get("state") or SilenceState.ACTIVE
    # One silence whatever its state (the alert page links to it), or the silences of a state.
    one = data.get("silence")
    rows = rows.filter(pk=one) if one else getattr(rows, state)(now)
    rows = rows.select_related("team", "service", "created_by", "expired_by")
    page = paginate(rows, data, SILENCES_PAGE_SIZE, ORDER_FIELD[state])
    respond_ids = team_ids_for(user, Action.RESPOND)
    for silence in page.rows:
        silence.current_state = silence.state(now)
        silence.may_expire = silence.current_state != SilenceState.EXPIRED and (
            respond_ids is None or silence.team_id in respond_ids
        )
    filters = {
        "state": state,
        "team": selected_team.slug if selected_team else "",
        "silence": data.get("silence") or "",
    }
    context = {
        "form": form,
        "teams": teams,
        "selected_team": selected_team,
        "silences": page.rows,
        "state": state,
        "state_choices": STATE_CHOICES,
        "may_create": respond_ids is None or bool(respond_ids),
        "now": now,
        **list_links("silences", filters, page),
    }
    return context, (200 if valid else 400)


@login_required
def silences(request: HttpRequest) -> HttpResponse:
    context, status = _list_context(request)
    return render(request, "monitoring/silences.html", context, status=status)


def _respond_teams(user: Any) -> Any:
    return teams_for(user, Action.RESPOND).order_by("name")


def _form(user: Any, data: Any = None, **kwargs: Any) -> SilenceForm:
    teams = _respond_teams(user)
    services = Service.objects.filter(team__in=teams).select_related("team")
    return SilenceForm(
        data, teams=teams, services=services.order_by("team__name", "name"), **kwargs
    )


def _check_posted_team(request: HttpRequest) -> None:
    """404 for a team the user cannot see, 403 for one where they may not silence; a missing
    or malformed team is left to the form (a field error)."""
    user = request.user
    team_id = request.POST.get("team", "")
    if team_id.isdecimal():
        team = teams_for(user, Action.VIEW).filter(pk=team_id).first()
        if team is None:
            raise Http404("no such team")
        if not can(user, Action.RESPOND, team):
            raise PermissionDenied(f"your role in {team} does not allow silencing")
    elif team_ids_for(user, Action.RESPOND) == set():
        raise PermissionDenied("silencing needs the responder role in a team")


def _render_form(
    request: HttpRequest,
    form: SilenceForm,
    *,
    status: int = 200,
    preview: dict[str, Any] | None = None,
    alert: Alert | None = None,
) -> HttpResponse:
    return render(
        request,
        "monitoring/silence_form.html",
        {"form": form, "preview": preview, "alert": alert},
        status=status,
    )


PREVIEW_FIELDS = ("team", "service", "matchers")


def _preview(form: SilenceForm) -> dict[str, Any] | None:
    """The firing alerts the silence would mute, or None (the form says why). Only what
    decides the match must be valid: a half-typed duration does not stop the preview."""
    form.is_valid()
    if any(name in form.errors for name in (*PREVIEW_FIELDS, "__all__")):
        return None
    data = form.cleaned_data
    try:
        alerts, total = preview_silence(
            team=data["team"], matchers=data["matchers"], service=data.get("service")
        )
    except ServiceError as error:
        add_service_error(form, error)
        return None
    return {"alerts": alerts, "total": total, "more": total - len(alerts)}


@login_required
def silence_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        _check_posted_team(request)
        form = _form(user, request.POST)
        if form.is_valid():
            try:
                silence = create_silence(actor=user, **form.service_arguments(timezone.now()))
            except ServiceError as error:
                add_service_error(form, error)
            else:
                messages.success(
                    request, f"Silenced {silence.label} until {silence.ends_at:%Y-%m-%d %H:%M} UTC."
                )
                return redirect(
                    reverse("silences")
                    + f"?team={silence.team.slug}&state="
                    + silence.state(timezone.now())
                )
        return _render_form(request, form, status=400)
    if team_ids_for(user, Action.RESPOND) == set():
        raise PermissionDenied("silencing needs the responder role in a team")
    alert = None
    initial: dict[str, Any] = {}
    if request.GET.get("alert", "").isdecimal():
        alert = get_object_or_404(
            scope(Alert.objects.select_related("service", "team"), user, Action.VIEW),
            pk=request.GET["alert"],
        )
        if not can(user, Action.RESPOND, alert):
            raise PermissionDenied("silencing needs the responder role in the alert's team")
        initial = {
            "team": alert.team_id,
            "service": alert.service_id,
            "matchers": matchers_for_labels(alert.labels or {}),
            "comment": f"Silenced from alert #{alert.pk}: {alert.summary}"[:2000],
        }
    elif request.GET.get("team"):
        team = Team.objects.filter(slug=request.GET["team"]).first()
        if team is not None and can(user, Action.RESPOND, team):
            initial = {"team": team.pk}
    form = _form(user, initial=initial)
    preview = _preview(_form(user, initial)) if alert is not None else None
    return _render_form(request, form, preview=preview, alert=alert)


@login_required
@require_POST
def silence_preview(request: HttpRequest) -> HttpResponse:
    """The alerts a silence being typed would mute: the form's partial for htmx, the whole
    form page (with the preview) for a plain POST."""
    _check_posted_team(request)
    form = _form(request.user, request.POST)
    preview = _preview(form)
    status = 200 if preview is not None else 400
    if request.headers.get("HX-Request"):
        return render(
            request,
            "monitoring/_silence_preview.html",
            {"form": form, "preview": preview},
            status=status,
        )
    return _render_form(request, form, status=status, preview=preview)


@login_required
@require_POST
def silence_expire(request: HttpRequest, pk: int) -> HttpResponse:
    silence = get_object_or_404(
        scope(Silence.objects.select_related("team"), request.user, Action.VIEW), pk=pk
    )
    if not can(request.user, Action.RESPOND, silence):
        raise PermissionDenied("ending a silence needs the responder role in the team")
    back = safe_next(request, reverse("silences") + f"?team={silence.team.slug}")
    try:
        expire_silence(silence, actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Ended the silence {silence.label}: matching alerts page again.")
    return redirect(back)
