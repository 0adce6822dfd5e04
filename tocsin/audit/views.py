"""The audit page: the event log of the teams a person manages (administrators: every team and
the system events), filtered by team, actor, object, kind and time, newest first in keyset
pages, and exported as CSV with the same filters.

Managers only: the log names who changed what from where, which viewers and responders have no
need to read. Checked here, on the server, for the page and the export alike.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from tocsin.keyset import Cursor, CursorField, capped_count, keyset_page
from tocsin.models import Event, Team
from tocsin.permissions import Action, is_admin, team_ids_for

PAGE_SIZE = 50
SYSTEM = "system"  # the team filter's value for events without a team (administrators only)
CSV_COLUMNS = (
    "id",
    "created_at",
    "team",
    "kind",
    "subject_type",
    "subject_id",
    "subject_label",
    "actor",
    "ip",
    "seq",
    "hash",
    "payload",
)


class AuditFilterForm(forms.Form):
    team = forms.ChoiceField(required=False)
    actor = forms.CharField(required=False, max_length=150, help_text="user name, exactly")
    kind = forms.CharField(
        required=False, max_length=64, help_text="a kind or its beginning: service. or team.updated"
    )
    subject_type = forms.CharField(required=False, max_length=32, label="Object type")
    subject_id = forms.CharField(required=False, max_length=64, label="Object id")
    since = forms.DateTimeField(required=False, label="From")
    until = forms.DateTimeField(required=False, label="Until")
    cursor = CursorField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, teams: list[Team], admin: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "All my teams" if not admin else "All")]
        choices += [(str(team.pk), team.name) for team in teams]
        if admin:
            choices.append((SYSTEM, "System (no team)"))
        self.fields["team"].choices = choices

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "must be after the start")
        return data


def _visible_teams(user: Any) -> tuple[list[Team], bool]:
    """The teams whose log the user may read, and whether they are an administrator."""
    if is_admin(user):
        return list(Team.objects.order_by("name")), True
    ids = team_ids_for(user, Action.MANAGE) or set()
    if not ids:
        raise PermissionDenied("the audit trail is for team managers")
    return list(Team.objects.filter(pk__in=ids).order_by("name")), False


def filtered_events(data: dict[str, Any], teams: list[Team], admin: bool) -> QuerySet:
    events = Event.objects.all()
    team = data.get("team")
    if team == SYSTEM:
        events = events.filter(team__isnull=True)
    elif team:
        events = events.filter(team_id=int(team))
    elif not admin:
        events = events.filter(team_id__in=[t.pk for t in teams])
    if data.get("actor"):
        events = events.filter(actor_label=data["actor"].strip())
    if data.get("kind"):
        events = events.filter(kind__startswith=data["kind"].strip())
    if data.get("subject_type"):
        events = events.filter(subject_type=data["subject_type"].strip())
    if data.get("subject_id"):
        events = events.filter(subject_id=data["subject_id"].strip())
    if data.get("since"):
        events = events.filter(created_at__gte=data["since"])
    if data.get("until"):
        events = events.filter(created_at__lte=data["until"])
    return events


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    teams, admin = _visible_teams(request.user)
    form = AuditFilterForm(request.GET or None, teams=teams, admin=admin)
    if request.GET and not form.is_valid():
        context = {"form": form, "page": None, "current": "audit"}
        return render(request, "tocsin/audit.html", context, status=400)
    data = form.cleaned_data if request.GET else {}
    events = filtered_events(data, teams, admin)
    if request.GET.get("format") == "csv":
        return _csv(events)
    page = keyset_page(events.select_related("team"), "created_at", PAGE_SIZE, data.get("cursor"))
    count, exact = capped_count(events)
    filters = {k: v for k, v in request.GET.items() if k not in ("cursor", "format") and v}
    query = urlencode(filters)
    base = reverse("audit")

    def link(cursor: Cursor | None) -> str:
        if cursor is None:
            return ""
        return base + "?" + urlencode({**filters, "cursor": cursor.encode()})

    context = {
        "form": form,
        "page": page,
        "count_text": f"{count:,}" + ("" if exact else "+"),
        "older_url": link(page.next),
        "newer_url": link(page.previous),
        "newest_url": base + (f"?{query}" if query else "") if data.get("cursor") else "",
        "csv_url": base + "?" + urlencode({**filters, "format": "csv"}),
        "current": "audit",
    }
    return render(request, "tocsin/audit.html", context)


def _cell(value: Any) -> Any:
    """A spreadsheet must not read a cell as a formula (CSV injection): quote those."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(events: QuerySet) -> StreamingHttpResponse:
    """Every matching row, newest first, streamed: the export does not hold the log in memory."""
    rows = (
        events.order_by("-created_at", "-id")
        .values_list(
            "id",
            "created_at",
            "team__slug",
            "kind",
            "subject_type",
            "subject_id",
            "subject_label",
            "actor_label",
            "ip",
            "seq",
            "hash",
            "payload",
        )
        .iterator(chunk_size=2000)
    )
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for row in rows:
            *fields, payload = row
            fields[1] = fields[1].isoformat()
            yield writer.writerow(
                [_cell(v) for v in fields] + [_cell(json.dumps(payload, sort_keys=True))]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="tocsin-audit-{stamp}.csv"'
    return response
