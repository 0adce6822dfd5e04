"""An alert's own page: what the sender said (labels, annotations, links, the last payload as
stored), how often it came, its history from the event log, what mutes it and the incident it
joined (``monitoring.incident_links``: monitoring cannot import incidents).

Viewers of the alert's team read it; other teams get a 404, like every team-scoped page. The
page follows the team's live stream like the incident page: alert and incident events make its
changing part (``alert_live``) re-fetch itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode

from monitoring.incident_links import AlertIncident, incident_of
from monitoring.models import Alert, InhibitionRule, MaintenanceWindow, Silence, Suppression
from monitoring.views.alert_rows import SEVERITY_CLASS
from tocsin.models import Event
from tocsin.permissions import Action, can, scope

# The page shows the newest events of an alert that flapped for weeks, not all of them.
HISTORY_LIMIT = 200
RUNBOOK_ANNOTATIONS = ("runbook_url", "runbook", "playbook")


def http_url(value: Any) -> str:
    """``value`` if it is an http(s) URL (a sender's annotation may hold anything), else ""."""
    text = str(value or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme in ("http", "https") and parts.netloc else ""


@dataclass
class Link:
    href: str
    text: str


@dataclass
class HistoryRow:
    at: Any
    kind: str
    text: str
    actor: str
    url: str = ""


@dataclass
class SuppressionReason:
    kind: str  # a Suppression value
    label: str
    detail: str = ""  # the matchers of a silence or rule, a window's schedule
    url: str = ""
    exists: bool = True
    silence_id: int | None = None  # an active silence, which responders may end from the page


@dataclass
class AlertPage:
    alert: Alert
    links: list[Link] = field(default_factory=list)
    runbook: str = ""
    payload_json: str = ""
    history: list[HistoryRow] = field(default_factory=list)
    history_truncated: bool = False
    suppression: SuppressionReason | None = None
    incident: AlertIncident | None = None


def describe(event: Event) -> str:
    """One sentence per alert event (``tocsin.events.kinds`` ALERT_PAYLOAD)."""
    p = event.payload or {}
    verb = event.kind.split(".", 1)[1]
    if verb == "firing":
        return f"Fired ({p.get('severity', '?')})"
    if verb == "refired":
        return "Fired again"
    if verb == "updated":
        before = p.get("before") or {}
        changes = [
            f"{name} {before[name]} → {p.get(name)}"
            for name in ("severity", "summary")
            if name in before and before[name] != p.get(name)
        ]
        return "Content changed" + (f": {'; '.join(changes)}" if changes else "")
    if verb == "resolved":
        return "Resolved"
    if verb == "acknowledged":
        return "Acknowledged by the sender"
    if verb == "flapping":
        return "Started flapping (changed state often in the last minutes)"
    if verb == "suppressed":
        by = p.get("suppressed_by") or {}
        what = dict(Suppression.choices).get(p.get("suppression") or "", "Suppressed")
        return f"{what}" + (f" by {by.get('label')}" if by.get("label") else "")
    if verb == "unsuppressed":
        return "No longer suppressed: it pages again"
    return event.kind.replace(".", " ").replace("_", " ").capitalize()


def _history(alert: Alert) -> tuple[list[HistoryRow], bool]:
    events = list(
        Event.objects.filter(subject_type="alert", subject_id=str(alert.pk))
        .select_related("actor")
        .order_by("-id")[: HISTORY_LIMIT + 1]
    )
    truncated = len(events) > HISTORY_LIMIT
    rows = [
        HistoryRow(
            at=event.created_at,
            kind=event.kind,
            text=describe(event),
            actor=event.actor.get_username() if event.actor else event.actor_label,
        )
        for event in reversed(events[:HISTORY_LIMIT])
    ]
    return rows, truncated


def _suppression(alert: Alert, user: Any) -> SuppressionReason | None:
    if not alert.suppression:
        return None
    by = alert.suppressed_by or {}
    reason = SuppressionReason(kind=alert.suppression, label=str(by.get("label") or ""))
    object_id = by.get("id")
    if alert.suppression == Suppression.SILENCED:
        silence = Silence.objects.filter(pk=object_id, team_id=alert.team_id).first()
        reason.exists = silence is not None
        if silence is not None:
            reason.label = silence.comment or silence.label
            reason.detail = silence.label
            reason.url = reverse("silences") + "?" + urlencode({"silence": silence.pk})
            if silence.is_active():
                reason.silence_id = silence.pk
    elif alert.suppression == Suppression.MAINTENANCE:
        window = MaintenanceWindow.objects.filter(
            pk=object_id, service__team_id=alert.team_id
        ).first()
        reason.exists = window is not None
        if window is not None:
            reason.label = window.title
            reason.url = reverse("maintenance_window", args=[window.pk])
    elif alert.suppression == Suppression.INHIBITED:
        rule = InhibitionRule.objects.filter(pk=object_id, team_id=alert.team_id).first()
        reason.exists = rule is not None
        if rule is not None:
            reason.label = rule.name
            reason.detail = rule.label
            if can(user, Action.MANAGE, rule):
                reason.url = reverse("admin:monitoring_inhibitionrule_change", args=[rule.pk])
    return reason


def last_payload(alert: Alert) -> str:
    """What the last send said, as stored (the pipeline keeps the normalised content, not the
    sender's bytes), as indented JSON; the template escapes it."""
    content = {
        "source": alert.source,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "severity": alert.severity,
        "summary": alert.summary,
        "description": alert.description,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "details": alert.details,
        "links": alert.links,
        "generator_url": alert.generator_url,
        "starts_at": alert.starts_at.isoformat() if alert.starts_at else None,
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "expected_end_at": alert.expected_end_at.isoformat() if alert.expected_end_at else None,
    }
    return json.dumps(content, indent=2, sort_keys=False, ensure_ascii=False, default=str)


def build_page(alert: Alert, user: Any) -> AlertPage:
    """Everything the alert page shows: a fixed number of queries whatever the alert."""
    page = AlertPage(alert=alert)
    if http_url(alert.generator_url):
        page.links.append(Link(alert.generator_url, "Source (generator URL)"))
    for link in alert.links or []:
        href = http_url(link.get("href")) if isinstance(link, dict) else ""
        if href:
            page.links.append(Link(href, str(link.get("text") or href)))
    annotations = alert.annotations or {}
    page.runbook = next(
        (http_url(annotations[k]) for k in RUNBOOK_ANNOTATIONS if http_url(annotations.get(k))),
        http_url(alert.service.runbook_url),
    )
    page.payload_json = last_payload(alert)
    page.history, page.history_truncated = _history(alert)
    page.suppression = _suppression(alert, user)
    page.incident = incident_of(alert)
    if page.incident is not None and page.incident.joined_at is not None:
        page.history.append(
            HistoryRow(
                at=page.incident.joined_at,
                kind="incident",
                text=f"Joined incident #{page.incident.incident_id}: {page.incident.title}",
                actor="grouping",
                url=page.incident.url,
            )
        )
        page.history.sort(key=lambda row: (row.at, row.kind == "incident"))
    return page


def _alert_or_404(request: HttpRequest, pk: int) -> Alert:
    return get_object_or_404(
        scope(
            Alert.objects.select_related("service", "team", "integration"),
            request.user,
            Action.VIEW,
        ),
        pk=pk,
    )


def _context(request: HttpRequest, alert: Alert) -> dict[str, Any]:
    return {
        "page": build_page(alert, request.user),
        "alert": alert,
        "severity_class": SEVERITY_CLASS.get(alert.severity, "badge-muted"),
        "may_respond": can(request.user, Action.RESPOND, alert),
        "silence_url": reverse("silence_create") + "?" + urlencode({"alert": alert.pk}),
        "labels": sorted((alert.labels or {}).items()),
        "annotations": sorted((alert.annotations or {}).items()),
    }


@login_required
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    # Read before the alert: an event committed in between is replayed to the page, which then
    # re-fetches, rather than lost below the id the page resumes from.
    last_event_id = Event.objects.newest_id_for(request.user)
    alert = _alert_or_404(request, pk)
    context = _context(request, alert)
    context["last_event_id"] = last_event_id
    return render(request, "monitoring/alert.html", context)


@login_required
def alert_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The changing part of the alert page, re-fetched when the team's alert or incident events
    arrive live (occurrences, resolution, silences, the incident it joined), and every minute
    for identical re-sends, which only count (no event)."""
    alert = _alert_or_404(request, pk)
    return render(request, "monitoring/_alert_live.html", _context(request, alert))
