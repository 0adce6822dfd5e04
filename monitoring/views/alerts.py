"""The Alerts page (filters, live table) and the one-click silence."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from monitoring.models import Alert, Severity
from monitoring.suppression import silence_alert
from monitoring.views.common import (
    CursorField,
    list_links,
    paginate,
    safe_next,
    since_text,
    team_and_service_filter,
)
from tocsin.models import Event
from tocsin.permissions import Action, can, scope, team_ids_for
from tocsin.services import ServiceError

ALERTS_PAGE_SIZE = 100
SILENCE_DURATION = timedelta(hours=1)
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
SEVERITY_CLASS = {"critical": "badge-critical", "error": "badge-firing", "warning": "badge-warning"}


def prepare_row(
    alert: Alert, now: datetime, respond_ids: set[int] | None, service_urls: dict[int, str]
) -> None:
    """What a row of the table shows, worked out here once: a hundred rows through template
    includes, ``date`` filters and ``{% url %}`` cost more than every query of the page.
    ``service_urls`` caches the service links across rows."""
    moment = alert.starts_at if alert.is_firing else (alert.ends_at or alert.last_change_at)
    alert.since = since_text(moment, now)
    alert.since_iso, alert.since_title = _moment(moment)
    alert.last_seen_ago = since_text(alert.last_seen_at, now)
    alert.last_seen_iso, alert.last_seen_title = _moment(alert.last_seen_at)
    alert.can_silence = (
        alert.is_firing
        and not alert.is_suppressed
        and (respond_ids is None or alert.team_id in respond_ids)
    )
    if alert.can_silence:
        alert.silence_url = reverse("alert_silence", args=[alert.pk])
    alert.label_items = sorted(
        (k, v) for k, v in alert.labels.items() if k not in ("alertname", "severity")
    )[:4]
    alert.severity_class = SEVERITY_CLASS.get(alert.severity, "badge-muted")
    if not alert.is_firing:
        alert.status_badge = ("badge-ok", "resolved", "")
    elif alert.is_suppressed:
        label = (alert.suppressed_by or {}).get("label", "")
        alert.status_badge = ("badge-muted", alert.get_suppression_display().lower(), label)
    elif alert.acknowledged_at:
        alert.status_badge = ("badge-acknowledged", "acknowledged", "")
    else:
        alert.status_badge = ("badge-firing", "firing", "")
    if alert.service_id not in service_urls:
        service_urls[alert.service_id] = reverse(
            "service", args=[alert.team.slug, alert.service.slug]
        )
    alert.service_url = service_urls[alert.service_id]


def _moment(moment: datetime) -> tuple[str, str]:
    """A <time>'s datetime attribute and its title (what ``|date:'c'`` and
    ``|date:'Y-m-d H:i:s'`` print, without the template filter's cost per cell)."""
    local = timezone.localtime(moment)
    return local.isoformat(), local.strftime("%Y-%m-%d %H:%M:%S")


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
    alerts = alerts.select_related("service", "team").defer(*UNSHOWN_FIELDS)
    page = paginate(alerts, data, ALERTS_PAGE_SIZE, "last_change_at")

    now = timezone.now()
    respond_ids = team_ids_for(user, Action.RESPOND)
    shown = page.rows
    service_urls: dict[int, str] = {}
    for alert in shown:
        prepare_row(alert, now, respond_ids, service_urls)

    filters = {
        "status": status,
        "severity": data.get("severity") or [],
        "suppressed": data.get("suppressed") or "",
        "team": selected_team.slug if selected_team else "",
        "service": selected_service.pk if selected_service else "",
    }
    context = {
        "form": form,
        "teams": teams,
        "service_choices": service_choices,
        "selected_team": selected_team,
        "selected_service": selected_service,
        "alerts": shown,
        **list_links("alerts", filters, page),
        "status_choices": STATUS_CHOICES,
        "severity_choices": Severity.choices,
        "suppressed_choices": SUPPRESSED_CHOICES,
        "silence_hours": int(SILENCE_DURATION.total_seconds() // 3600),
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
