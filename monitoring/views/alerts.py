"""The Alerts page (filters, live table) and the one-click silence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from monitoring.models import Alert, Severity
from monitoring.suppression import silence_alert
from monitoring.views.alert_rows import RowContext, alert_rows
from monitoring.views.common import (
    CursorField,
    attach_services,
    list_links,
    paginate,
    safe_next,
    team_and_service_filter,
)
from tocsin.models import Event
from tocsin.permissions import Action, can, scope, team_ids_for
from tocsin.services import ServiceError

ALERTS_PAGE_SIZE = 100
SILENCE_DURATION = timedelta(hours=1)
SILENCE_HOURS = int(SILENCE_DURATION.total_seconds() // 3600)
SEVERITY_ORDER = {value: rank for rank, value in enumerate(reversed(Severity.values))}


STATUS_CHOICES = [("firing", "Firing"), ("resolved", "Resolved"), ("all", "All")]
SUPPRESSED_CHOICES = [("", "Any"), ("no", "Not suppressed"), ("yes", "Suppressed")]


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    severity = forms.MultipleChoiceField(
        choices=Severity.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    suppressed = forms.ChoiceField(choices=SUPPRESSED_CHOICES, required=False)
    team = forms.CharField(required=False)
    service = forms.IntegerField(required=False, min_value=1)
    cursor = CursorField(required=False)


UNSHOWN_FIELDS = (
    "description",
    "annotations",
    "details",
    "links",
    "generator_url",
    "recent_changes",
    "content_hash",
)


def _alerts_context(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """Everything the Alerts page and its table partial show, and the HTTP status."""
    user = request.user
    form = AlertFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    teams, selected_team, service_choices, selected_service = team_and_service_filter(user, data)

    status = data.get("status") or "firing"
    alerts: QuerySet[Alert] = scope(Alert.objects.all(), user, Action.VIEW)
    if status != "all":
        alerts = alerts.filter(status=status)
    if data.get("severity"):
        alerts = alerts.filter(severity__in=data["severity"])
    if data.get("suppressed") == "yes":
        alerts = alerts.exclude(suppression="")
    elif data.get("suppressed") == "no":
        alerts = alerts.filter(suppression="")
    if selected_team is not None:
        alerts = alerts.filter(team=selected_team)
    if selected_service is not None:
        alerts = alerts.filter(service=selected_service)
    # The table shows neither the sender's long texts nor the flap history: not read at all.
    page = paginate(alerts.defer(*UNSHOWN_FIELDS), data, ALERTS_PAGE_SIZE, "last_change_at")
    attach_services(page.rows, service_choices)

    filters = {
        "status": status,
        "severity": data.get("severity") or [],
        "suppressed": data.get("suppressed") or "",
        "team": selected_team.slug if selected_team else "",
        "service": selected_service.pk if selected_service else "",
    }
    links = list_links("alerts", filters, page)
    context = {
        "form": form,
        "teams": teams,
        "service_choices": service_choices,
        "selected_team": selected_team,
        "selected_service": selected_service,
        "alerts": page.rows,
        **links,
        "alert_rows": alert_rows(
            page.rows,
            RowContext(
                now=timezone.now(),
                respond_ids=team_ids_for(user, Action.RESPOND),
                page_url=links["page_url"],
                csrf_token=get_token(request),
                silence_hours=SILENCE_HOURS,
                show_team=len(teams) > 1,
            ),
        ),
        "status_choices": STATUS_CHOICES,
        "severity_choices": Severity.choices,
        "suppressed_choices": SUPPRESSED_CHOICES,
        "silence_hours": SILENCE_HOURS,
    }
    return context, (200 if valid else 400)


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    context, status = _alerts_context(request)
    context["last_event_id"] = Event.objects.newest_id_for(request.user)
    return render(request, "monitoring/alerts.html", context, status=status)


@login_required
def alerts_table(request: HttpRequest) -> HttpResponse:
    """The table alone, re-fetched by the Alerts page when alert events arrive live."""
    context, status = _alerts_context(request)
    return render(request, "monitoring/_alerts_table.html", context, status=status)


@login_required
@require_POST
def alert_silence(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(
        scope(Alert.objects.select_related("service", "team"), request.user, Action.VIEW), pk=pk
    )
    if not can(request.user, Action.RESPOND, alert):
        raise PermissionDenied("silencing needs the responder role in the team")
    back = safe_next(request, reverse("alerts"))
    comment = (request.POST.get("comment") or "").strip()[:500] or (
        f"Silenced for {int(SILENCE_DURATION.total_seconds() // 3600)} h from the Alerts page"
    )
    try:
        silence_alert(alert, SILENCE_DURATION, request.user, comment)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Silenced “{alert.summary}” for one hour.")
    return redirect(back)
