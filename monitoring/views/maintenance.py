"""Maintenance window pages: a team's windows (one-off and weekly, with the next occurrence in
the window's own time zone), and creating, changing and deleting them.

As in the API and admin: the team reads, managers change. A window of a team the user cannot
see is a 404, a role too low a 403, bad input a 400 with the form's errors and nothing written;
every write answers with a redirect (POST → redirect → GET).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from monitoring.models import MaintenanceWindow, Service
from monitoring.suppression import (
    create_maintenance_window,
    delete_maintenance_window,
    update_maintenance_window,
)
from monitoring.views.common import team_filter
from monitoring.views.suppression_forms import WEEKDAYS, MaintenanceWindowForm, duration_text
from tocsin.forms import add_service_error
from tocsin.permissions import Action, can, scope, team_ids_for
from tocsin.services import ServiceError

DAY_NAMES = [name[:3] for _, name in WEEKDAYS]


def schedule_text(window: MaintenanceWindow) -> str:
    """ "Mon, Thu at 02:00 for 2h (Europe/Berlin)" or the one-off period in its zone."""
    zone = ZoneInfo(window.time_zone or "UTC")
    if window.is_recurring:
        days = ", ".join(DAY_NAMES[d] for d in window.weekdays)
        start = window.start_time.strftime("%H:%M") if window.start_time else "?"
        return f"{days} at {start} for {duration_text(window.duration)} ({window.time_zone})"
    if window.starts_at and window.ends_at:
        start = window.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        end = window.ends_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        return f"{start} to {end} ({window.time_zone})"
    return ""


def describe(window: MaintenanceWindow, now: datetime) -> MaintenanceWindow:
    """Give ``window`` what the pages show: its schedule, whether it is on, and the occurrence
    now or next, in its own time zone."""
    zone = ZoneInfo(window.time_zone or "UTC")
    window.schedule = schedule_text(window)
    window.active_now = window.occurrence_at(now) is not None
    upcoming = window.next_occurrence(now)
    window.next_start, window.next_end = upcoming or (None, None)
    window.next_local = (
        f"{upcoming[0].astimezone(zone):%a %Y-%m-%d %H:%M} to "
        f"{upcoming[1].astimezone(zone):%a %Y-%m-%d %H:%M} {window.time_zone}"
        if upcoming
        else ""
    )
    return window


# Windows that ended longer ago than this are counted, not listed: the page stays the size of
# what is planned, whatever years of history the table holds (SLA reports still read them).
LISTED_PAST = timedelta(days=90)


def _windows_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    teams, selected_team = team_filter(user, request.GET.get("team"))
    rows = scope(MaintenanceWindow.objects.all(), user, Action.VIEW, "service__team")
    if selected_team is not None:
        rows = rows.filter(service__team=selected_team)
    now = timezone.now()
    long_over = rows.filter(ends_at__lt=now - LISTED_PAST)
    older_windows = long_over.count()
    rows = rows.exclude(ends_at__lt=now - LISTED_PAST)  # recurring windows have no end: kept
    windows = [
        describe(w, now)
        for w in rows.select_related("service", "service__team", "created_by").order_by(
            "service__team__name", "service__name", "title", "id"
        )
    ]
    manage_ids = team_ids_for(user, Action.MANAGE)
    for window in windows:
        window.may_manage = manage_ids is None or window.service.team_id in manage_ids
    return {
        "teams": teams,
        "selected_team": selected_team,
        # Not "current": base.html names the current URL so.
        "upcoming_windows": [w for w in windows if w.next_start is not None],
        "past_windows": [w for w in windows if w.next_start is None],
        "older_windows": older_windows,
        "listed_past_days": LISTED_PAST.days,
        "may_create": manage_ids is None or bool(manage_ids),
    }


@login_required
def maintenance(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/maintenance.html", _windows_context(request))


def _managed_services(user: Any) -> Any:
    return scope(Service.objects.select_related("team"), user, Action.MANAGE).order_by(
        "team__name", "name"
    )


def _check_posted_service(request: HttpRequest) -> None:
    """404 for a service the user cannot see, 403 for one whose team they do not manage; a
    missing or malformed id is left to the form."""
    user = request.user
    service_id = request.POST.get("service", "")
    if service_id.isdecimal():
        service = scope(Service.objects.all(), user, Action.VIEW).filter(pk=service_id).first()
        if service is None:
            raise Http404("no such service")
        if not can(user, Action.MANAGE, service):
            raise PermissionDenied("maintenance windows are changed by the team's managers")
    elif team_ids_for(user, Action.MANAGE) == set():
        raise PermissionDenied("maintenance windows are changed by the team's managers")


def _after_write(window_or_team: Any) -> HttpResponse:
    return redirect(reverse("maintenance") + f"?team={window_or_team.slug}")


@login_required
def maintenance_create(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST":
        _check_posted_service(request)
        form = MaintenanceWindowForm(request.POST, services=_managed_services(user))
        if form.is_valid():
            service = form.cleaned_data["service"]
            try:
                window = create_maintenance_window(
                    service=service,
                    title=form.cleaned_data["title"],
                    actor=user,
                    **form.window_fields(),
                )
            except ServiceError as error:
                add_service_error(form, error)
            else:
                messages.success(request, f"Maintenance window “{window.title}” created.")
                return _after_write(service.team)
        return render(request, "monitoring/maintenance_form.html", {"form": form}, status=400)
    if team_ids_for(user, Action.MANAGE) == set():
        raise PermissionDenied("maintenance windows are changed by the team's managers")
    initial = {}
    if request.GET.get("service", "").isdecimal():
        initial["service"] = int(request.GET["service"])
    form = MaintenanceWindowForm(services=_managed_services(user), initial=initial)
    return render(request, "monitoring/maintenance_form.html", {"form": form})


def _window_or_404(request: HttpRequest, pk: int) -> MaintenanceWindow:
    rows = MaintenanceWindow.objects.select_related("service", "service__team", "created_by")
    return get_object_or_404(scope(rows, request.user, Action.VIEW, "service__team"), pk=pk)


@login_required
def maintenance_window(request: HttpRequest, pk: int) -> HttpResponse:
    """One window: its schedule for the team, the form to change it for managers."""
    window = _window_or_404(request, pk)
    may_manage = can(request.user, Action.MANAGE, window.service)
    status = 200
    form = None
    if request.method == "POST":
        if not may_manage:
            raise PermissionDenied("maintenance windows are changed by the team's managers")
        form = MaintenanceWindowForm(request.POST, window=window)
        if form.is_valid():
            try:
                update_maintenance_window(
                    window,
                    actor=request.user,
                    title=form.cleaned_data["title"],
                    **form.window_fields(),
                )
            except ServiceError as error:
                add_service_error(form, error)
            else:
                messages.success(request, f"Maintenance window “{window.title}” saved.")
                return _after_write(window.service.team)
        status = 400
        window.refresh_from_db()
    elif may_manage:
        form = MaintenanceWindowForm(window=window)
    describe(window, timezone.now())
    return render(
        request,
        "monitoring/maintenance_window.html",
        {"window": window, "form": form, "may_manage": may_manage},
        status=status,
    )


@login_required
@require_POST
def maintenance_delete(request: HttpRequest, pk: int) -> HttpResponse:
    window = _window_or_404(request, pk)
    if not can(request.user, Action.MANAGE, window.service):
        raise PermissionDenied("maintenance windows are changed by the team's managers")
    team = window.service.team
    delete_maintenance_window(window, actor=request.user)
    messages.success(request, f"Maintenance window “{window.title}” deleted.")
    return _after_write(team)
