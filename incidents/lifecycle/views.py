"""The Incidents pages: the list (with bulk acknowledge/resolve) and one incident's page.

Thin views over ``incidents.lifecycle.services`` and ``incidents.lifecycle.timeline``. Same rules
as the other
pages: someone who may not view the incident's team gets 404, a member whose role is too low
gets 403, and every check happens here whatever the templates show. Both pages re-fetch a
partial when ``incident.*`` events arrive live (``tocsin:live-incident``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from incidents.lifecycle import deliveries, services, timeline
from incidents.lifecycle.list_rows import incident_rows
from incidents.models import (
    OPEN_STATUSES,
    HoursCondition,
    Incident,
    IncidentAlert,
    IncidentStatus,
    Priority,
    Schedule,
)
from monitoring.views.common import (
    CursorField,
    attach_services,
    list_links,
    paginate,
    since_text,
    team_and_service_filter,
)
from tocsin.models import Event
from tocsin.permissions import Action, can, scope, team_ids_for
from tocsin.services import ServiceError

PAGE_SIZE = 100
PAGES_SHOWN = 20  # the escalation panel's latest deliveries
STATUS_CHOICES = [
    ("open", "Open"),
    ("triggered", "Triggered"),
    ("acknowledged", "Acknowledged"),
    ("resolved", "Resolved"),
    ("all", "All"),
]
# Colours: the badge classes the Alerts page uses for severities and states.
PRIORITY_CLASS = {
    "P1": "badge-critical",
    "P2": "badge-firing",
    "P3": "badge-warning",
    "P4": "badge-muted",
    "P5": "badge-muted",
}
STATUS_CLASS = {
    "triggered": "badge-firing",
    "acknowledged": "badge-acknowledged",
    "resolved": "badge-ok",
}
SEVERITY_CLASS = {"critical": "badge-critical", "error": "badge-firing", "warning": "badge-warning"}
BULK_ACTIONS = {"acknowledge": "Acknowledged", "resolve": "Resolved"}


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _colour(incident: Incident) -> Incident:
    incident.priority_class = PRIORITY_CLASS.get(incident.priority, "badge-muted")
    incident.status_class = STATUS_CLASS.get(incident.status, "badge-muted")
    return incident


# -- the list ----------------------------------------------------------------------------------
class IncidentFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    priority = forms.MultipleChoiceField(choices=Priority.choices, required=False)
    team = forms.CharField(required=False)
    service = forms.IntegerField(required=False, min_value=1)
    cursor = CursorField(required=False)


def _list_context(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """Everything the list page and its table partial show, and the HTTP status."""
    user = request.user
    form = IncidentFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    teams, selected_team, service_choices, selected_service = team_and_service_filter(user, data)

    status = data.get("status") or "open"
    incidents: QuerySet[Incident] = scope(Incident.objects.all(), user, Action.VIEW)
    if status == "open":
        incidents = incidents.filter(status__in=OPEN_STATUSES)
    elif status != "all":
        incidents = incidents.filter(status=status)
    if data.get("priority"):
        incidents = incidents.filter(priority__in=data["priority"])
    if selected_team is not None:
        incidents = incidents.filter(team=selected_team)
    if selected_service is not None:
        incidents = incidents.filter(service=selected_service)
    # The table shows neither the summary nor the escalation snapshot: not read at all.
    incidents = incidents.select_related("assignee").defer("summary", "policy_snapshot")
    page = paginate(incidents, data, PAGE_SIZE, "created_at")
    shown = page.rows
    attach_services(shown, service_choices)
    # Alert counts of the page's incidents only: a COUNT joined into the list query would
    # group every matching incident before the page is cut.
    alert_counts = dict(
        IncidentAlert.objects.filter(incident__in=[i.pk for i in shown])
        .order_by()
        .values_list("incident")
        .annotate(n=Count("id"))
    )

    respond_ids = team_ids_for(user, Action.RESPOND)
    for incident in shown:
        incident.alert_count = alert_counts.get(incident.pk, 0)
        incident.can_respond = respond_ids is None or incident.team_id in respond_ids
        _colour(incident)
    can_bulk = any(i.can_respond for i in shown)

    filters = {
        "status": status,
        "priority": data.get("priority") or [],
        "team": selected_team.slug if selected_team else "",
        "service": selected_service.pk if selected_service else "",
    }
    context = {
        "form": form,
        "teams": teams,
        "service_choices": service_choices,
        "selected_team": selected_team,
        "selected_service": selected_service,
        "incidents": shown,
        **list_links("incidents", filters, page),
        "status_choices": STATUS_CHOICES,
        "priority_choices": Priority.choices,
        "can_bulk": can_bulk,
        "incident_rows": incident_rows(
            shown, now=timezone.now(), can_bulk=can_bulk, show_team=len(teams) > 1
        ),
    }
    return context, (200 if valid else 400)


@login_required
def incident_list(request: HttpRequest) -> HttpResponse:
    context, status = _list_context(request)
    context["last_event_id"] = Event.objects.newest_id_for(request.user)
    return render(request, "incidents/incidents.html", context, status=status)


@login_required
def incident_table(request: HttpRequest) -> HttpResponse:
    """The table alone, re-fetched by the list page when incident events arrive live."""
    context, status = _list_context(request)
    return render(request, "incidents/_incidents_table.html", context, status=status)


@login_required
@require_POST
def incident_bulk(request: HttpRequest) -> HttpResponse:
    """Acknowledge or resolve the ticked incidents: all checked first, then each through the
    service. An id the user may not see is a 404 and one they may not act on a 403, and either
    way nothing changes."""
    action = request.POST.get("action", "")
    if action not in BULK_ACTIONS:
        return HttpResponse("unknown action", status=400)
    raw = request.POST.getlist("ids")
    if not raw or not all(v.isdecimal() for v in raw):
        messages.error(request, "Tick at least one incident first.")
        return redirect(_safe_next(request, reverse("incidents")))
    ids = {int(v) for v in raw}
    chosen = list(
        scope(Incident.objects.select_related("team"), request.user, Action.VIEW)
        .filter(pk__in=ids)
        .order_by("pk")
    )
    if len(chosen) != len(ids):
        raise Http404("no such incident")
    for incident in chosen:
        if not can(request.user, Action.RESPOND, incident):
            raise PermissionDenied(f"your role in {incident.team} does not allow this")
    done, skipped = 0, []
    for incident in chosen:
        try:
            if action == "acknowledge":
                changed = services.acknowledge(incident, actor=request.user, via="web")
            else:
                changed = services.resolve(incident, actor=request.user, via="web")
        except ServiceError as error:
            skipped.append(f"#{incident.pk}: {error.message}")
            continue
        done += int(changed)
    word = BULK_ACTIONS[action].lower()
    messages.success(request, f"{done} incident{'s' if done != 1 else ''} {word}.")
    if skipped:
        messages.warning(request, "Not changed: " + "; ".join(skipped))
    return redirect(_safe_next(request, reverse("incidents")))


# -- one incident ------------------------------------------------------------------------------
def _incident_or_404(request: HttpRequest, pk: int, action: Action = Action.VIEW) -> Incident:
    incident = (
        scope(Incident.objects.all(), request.user, Action.VIEW)
        .select_related("team", "service", "assignee", "commander", "merged_into")
        .filter(pk=pk)
        .first()
    )
    if incident is None:
        raise Http404("no such incident")
    if not can(request.user, action, incident):
        raise PermissionDenied(f"your role in {incident.team} does not allow this")
    return incident


def _detail_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    user = request.user
    now = timezone.now()
    events = list(timeline.for_incident(incident))
    links = list(
        IncidentAlert.objects.filter(incident=incident)
        .select_related("alert")
        .order_by("added_at", "id")
    )
    snapshot = incident.policy_snapshot or {}
    steps = list(snapshot.get("steps") or [])
    user_ids = {u for s in steps for u in s.get("user_ids") or []}
    for event in events:
        if event.kind == "incident.escalated":
            user_ids.update((event.payload or {}).get("user_ids") or [])
        elif event.kind.startswith("notification.") and (event.payload or {}).get("recipient_id"):
            user_ids.add(event.payload["recipient_id"])
    User = get_user_model()
    users = {
        pk: name
        for pk, name in User.objects.filter(pk__in=user_ids).values_list("pk", User.USERNAME_FIELD)
    }
    schedule_ids = {s["schedule_id"] for s in steps if s.get("schedule_id")}
    schedules = dict(
        Schedule.objects.filter(pk__in=schedule_ids).values_list("pk", "name")
        if schedule_ids
        else []
    )
    sent = deliveries.for_incident(incident, users)
    for event in events:
        event.sentence = timeline.describe(event, users)
        event.deliveries = (
            sent.for_event(event.payload or {})
            if event.kind == "incident.escalated"
            else sent.resolved.get(event.pk, [])
        )
        event.who = event.actor.get_username() if event.actor else (event.actor_label or "Tocsin")
        event.text = (
            (event.payload or {}).get("text", "")
            if event.kind
            in (
                "incident.note",
                "incident.status_update",
            )
            else ""
        )
    step_rows = []
    delay_total = 0
    for position, step in enumerate(steps):
        delay_total += int(step.get("delay_minutes") or 0)
        targets = [timeline.user_name(u, users) for u in step.get("user_ids") or []]
        if step.get("schedule_id"):
            name = schedules.get(step["schedule_id"], f"schedule #{step['schedule_id']}")
            targets.append(f"on call in {name}")
        if step.get("notify_team"):
            targets.append("the whole team")
        conditions = []
        if step.get("min_priority"):
            conditions.append(f"{step['min_priority']} or more urgent")
        hours = step.get("hours_condition") or HoursCondition.ALWAYS
        if hours != HoursCondition.ALWAYS and step.get("windows"):
            conditions.append(
                f"{'inside' if hours == HoursCondition.INSIDE else 'outside'} its hours "
                f"({step.get('time_zone') or 'UTC'})"
            )
        step_rows.append(
            {
                "number": position + 1,
                "delay": int(step.get("delay_minutes") or 0),
                "at_minute": delay_total,
                "targets": targets,
                "round_robin": step.get("round_robin"),
                "reassign": step.get("reassign"),
                "conditions": conditions,
                "is_next": incident.next_step_at is not None and position == incident.current_step,
            }
        )
    for link in links:
        link.alert.severity_class = SEVERITY_CLASS.get(link.alert.severity, "badge-muted")
    _colour(incident)
    may_respond = can(user, Action.RESPOND, incident)
    return {
        "incident": incident,
        "events": events,
        "links": links,
        "policy": snapshot,
        "steps": step_rows,
        "pages": sent.all[-PAGES_SHOWN:][::-1],
        "pages_total": len(sent.all),
        "age": since_text(incident.created_at, now),
        "may_respond": may_respond,
        "responders": services.responders(incident) if may_respond else [],
        "priority_choices": Priority.choices,
        "statuses": IncidentStatus,
    }


@login_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _incident_or_404(request, pk)
    context = _detail_context(request, incident)
    context["last_event_id"] = Event.objects.newest_id_for(request.user)
    return render(request, "incidents/incident.html", context)


@login_required
def incident_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The changing part of the incident page, re-fetched when incident events arrive live."""
    incident = _incident_or_404(request, pk)
    return render(request, "incidents/_timeline.html", _detail_context(request, incident))


def _user_choice(request: HttpRequest, incident: Incident) -> Any:
    raw = request.POST.get("user", "")
    if raw == "":
        return None
    if not raw.isdecimal():
        raise ServiceError("choose a member of the team", "user")
    found = get_user_model().objects.filter(pk=int(raw)).first()
    if found is None:
        raise ServiceError("no such user", "user")
    return found


def _act(request: HttpRequest, incident: Incident, action: str) -> str:
    """Run one action through the services; returns the success message."""
    user = request.user
    if action == "acknowledge":
        changed = services.acknowledge(incident, actor=user, via="web")
        return "Acknowledged." if changed else "It was already acknowledged."
    if action == "resolve":
        changed = services.resolve(incident, actor=user, via="web")
        return "Resolved." if changed else "It was already resolved."
    if action == "reopen":
        services.reopen(incident, actor=user)
        return "Reopened: escalation starts again."
    if action == "note":
        services.add_note(incident, request.POST.get("text", ""), actor=user)
        return "Note added."
    if action == "status-update":
        services.post_status_update(incident, request.POST.get("text", ""), actor=user)
        return "Status update posted."
    if action == "reassign":
        assignee = _user_choice(request, incident)
        services.reassign(incident, assignee, actor=user)
        return f"Assigned to {assignee.get_username()}." if assignee else "Unassigned."
    if action == "priority":
        services.set_priority(incident, request.POST.get("priority", ""), actor=user)
        return f"Priority set to {incident.priority}."
    raise Http404("no such action")


ACTIONS = ("acknowledge", "resolve", "reopen", "note", "status-update", "reassign", "priority")


@login_required
@require_POST
def incident_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("no such action")
    incident = _incident_or_404(request, pk, Action.RESPOND)
    try:
        message = _act(request, incident, action)
    except ServiceError as error:
        messages.error(request, error.message[:1].upper() + error.message[1:])
    else:
        messages.success(request, message)
    return redirect(incident.get_absolute_url())
