"""Postmortems: start one (prefilled from the incident), edit, review, publish, track actions.

Every change records a ``postmortem.*`` event about the *incident* in the same transaction, so
it appears on the incident's timeline and reaches live pages like any other incident change.
Permission checks belong to the callers (pages, API, admin), which ask ``tocsin.permissions``:
viewers read, responders write.

Rules:
- A postmortem may be started as soon as the incident exists (teams draft while it is still
  fresh); it can only be *published* once the incident is resolved.
- Publishing locks the narrative (summary, impact, root cause, contributing factors, timeline);
  reopening it (back to draft) unlocks it. Action items stay workable after publication, since
  the follow-up work is what outlives the document.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from incidents.models import (
    ActionItem,
    ActionItemStatus,
    Incident,
    Postmortem,
    PostmortemStatus,
)
from incidents.postmortems.prefill import (
    MAX_ROW_TEXT,
    _iso,
    prefill_impact,
    prefill_summary,
    prefill_timeline,
)
from tocsin.events import record
from tocsin.models import Membership
from tocsin.services import ServiceError

MAX_TEXT = 20_000  # per narrative section
MAX_ROWS = 500
MAX_ACTION_ITEMS = 200
TEXT_FIELDS = ("summary", "impact", "root_cause", "contributing_factors")
EDITABLE_FIELDS = (*TEXT_FIELDS, "timeline")
ITEM_FIELDS = ("title", "owner", "due_date", "status", "tracker_url")
TITLE_MAX = ActionItem._meta.get_field("title").max_length
URL_MAX = ActionItem._meta.get_field("tracker_url").max_length

# The events worth a line in a postmortem's timeline; the rest (alert re-fires, the
# postmortem's own edits) stays in the event log.
# Events a person did, worth naming who ("Acknowledged by alice").
STATUS_EVENTS = {
    PostmortemStatus.DRAFT: "postmortem.reopened",
    PostmortemStatus.IN_REVIEW: "postmortem.submitted",
    PostmortemStatus.PUBLISHED: "postmortem.published",
}

# --- validation -------------------------------------------------------------------------------


def _clean_text(value: Any, field: str) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ServiceError("text expected", field)
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(value) > MAX_TEXT:
        raise ServiceError(f"at most {MAX_TEXT} characters", field)
    return value


def _clean_time(value: Any, field: str) -> str:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = parse_datetime(value.strip())
        except ValueError:
            when = None
    else:
        when = None
    if when is None:
        raise ServiceError("a date and time, e.g. 2025-01-15T12:00:00Z", field)
    if timezone.is_naive(when):
        when = when.replace(tzinfo=UTC)
    return _iso(when)


def clean_timeline(rows: Any) -> list[dict[str, Any]]:
    """Rows as stored: times normalised to UTC, texts one line each, sorted by time (stably)."""
    if not isinstance(rows, list):
        raise ServiceError("a list of rows", "timeline")
    if len(rows) > MAX_ROWS:
        raise ServiceError(f"at most {MAX_ROWS} rows", "timeline")
    cleaned = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ServiceError("each row needs “at” and “text”", f"timeline.{n}")
        unknown = set(row) - {"at", "text", "event_id", "kind"}
        if unknown:
            raise ServiceError(f"unknown keys: {', '.join(sorted(unknown))}", f"timeline.{n}")
        text = row.get("text")
        if not isinstance(text, str) or not " ".join(text.split()):
            raise ServiceError("write what happened", f"timeline.{n}.text")
        text = " ".join(text.split())
        if len(text) > MAX_ROW_TEXT:
            raise ServiceError(f"at most {MAX_ROW_TEXT} characters", f"timeline.{n}.text")
        event_id = row.get("event_id")
        if event_id is not None and (not isinstance(event_id, int) or isinstance(event_id, bool)):
            raise ServiceError("an event id or null", f"timeline.{n}.event_id")
        kind = row.get("kind") or ""
        if not isinstance(kind, str) or len(kind) > 64:
            raise ServiceError("an event kind", f"timeline.{n}.kind")
        at = _clean_time(row.get("at"), f"timeline.{n}.at")
        cleaned.append({"at": at, "text": text, "event_id": event_id, "kind": kind})
    cleaned.sort(key=lambda r: parse_datetime(r["at"]))
    return cleaned


LINE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?)\s*(?:Z|UTC)?\s+(.*)$")


def timeline_to_text(rows: list[dict[str, Any]]) -> str:
    """The rows as the page's textarea shows them: ``YYYY-MM-DD HH:MM:SS  text``, in UTC."""
    out = []
    for row in rows:
        when = parse_datetime(row["at"])
        when = when.astimezone(UTC) if when else None
        out.append(f"{when:%Y-%m-%d %H:%M:%S}  {row['text']}" if when else row["text"])
    return "\n".join(out)


def timeline_from_text(text: str, previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parse the textarea back; a line kept as it was keeps its event id and kind."""
    known = {(r.get("at"), r.get("text")): r for r in previous}
    rows = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = LINE.match(line)
        if match is None:
            raise ServiceError(
                f"line {number}: start with the time (YYYY-MM-DD HH:MM:SS, UTC), then the text",
                "timeline",
            )
        at = _clean_time(match.group(1).replace(" ", "T"), "timeline")
        row_text = match.group(2).strip()
        if not row_text:
            raise ServiceError(f"line {number}: write what happened after the time", "timeline")
        before = known.get((at, " ".join(row_text.split())))
        rows.append(
            {
                "at": at,
                "text": row_text,
                "event_id": before.get("event_id") if before else None,
                "kind": before.get("kind", "") if before else "",
            }
        )
    return rows


def _clean_due(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        raise ServiceError("a date (YYYY-MM-DD), not a time", "due_date")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            parsed = parse_date(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed
    raise ServiceError("a date as YYYY-MM-DD", "due_date")


def _clean_url(value: Any) -> str:
    value = (value or "").strip() if isinstance(value, str) or value is None else None
    if value is None:
        raise ServiceError("a URL", "tracker_url")
    if not value:
        return ""
    if len(value) > URL_MAX:
        raise ServiceError(f"at most {URL_MAX} characters", "tracker_url")
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise ServiceError("an http:// or https:// URL", "tracker_url") from None
    return value


def _clean_title(value: Any) -> str:
    title = " ".join(value.split()) if isinstance(value, str) else ""
    if not title:
        raise ServiceError("say what needs doing", "title", "required")
    if len(title) > TITLE_MAX:
        raise ServiceError(f"at most {TITLE_MAX} characters", "title")
    return title


def _clean_owner(postmortem: Postmortem, owner: Any) -> Any:
    if owner is None:
        return None
    if not owner.is_active:
        raise ServiceError("this user account is deactivated", "owner")
    if not Membership.objects.filter(team_id=postmortem.team_id, user=owner).exists():
        raise ServiceError(
            f"{owner.get_username()} is not a member of the incident's team", "owner", "not_member"
        )
    return owner


def _clean_item_status(value: Any) -> str:
    if value not in ActionItemStatus.values:
        raise ServiceError(f"one of {', '.join(ActionItemStatus.values)}", "status")
    return value


def owner_choices(postmortem_or_team_id: Postmortem | int) -> list[Any]:
    """Who may own action items: the team's active members, by name."""
    team_id = (
        postmortem_or_team_id.team_id
        if isinstance(postmortem_or_team_id, Postmortem)
        else postmortem_or_team_id
    )
    return list(
        get_user_model()
        .objects.filter(memberships__team_id=team_id, is_active=True)
        .order_by("username")
    )


# --- operations -------------------------------------------------------------------------------


def _event(kind: str, postmortem: Postmortem, *, actor: Any, payload: dict | None = None) -> None:
    record(
        kind,
        team=postmortem.team_id,
        subject=postmortem.incident,  # about the incident: its timeline and live page show it
        actor=actor,
        payload={
            "incident_id": postmortem.incident_id,
            "postmortem_id": postmortem.pk,
            **(payload or {}),
        },
    )


def _locked(postmortem: Postmortem) -> Postmortem:
    fresh = Postmortem.objects.select_for_update().get(pk=postmortem.pk)
    for field in Postmortem._meta.concrete_fields:
        setattr(postmortem, field.attname, getattr(fresh, field.attname))
    return postmortem


def create(incident: Incident, *, actor: Any, now: datetime | None = None) -> Postmortem:
    """Start the incident's postmortem, prefilled from what the event log already knows."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            postmortem = Postmortem.objects.create(
                incident=incident,
                team_id=incident.team_id,
                summary=prefill_summary(incident),
                impact=prefill_impact(incident),
                timeline=prefill_timeline(incident),
                author=actor if getattr(actor, "is_authenticated", False) else None,
                created_at=now,
                updated_at=now,
            )
            _event(
                "postmortem.created",
                postmortem,
                actor=actor,
                payload={"timeline_rows": len(postmortem.timeline)},
            )
    except IntegrityError:
        raise ServiceError("this incident already has a postmortem", None, "duplicate") from None
    return postmortem


def update(postmortem: Postmortem, *, actor: Any, **changes: Any) -> Postmortem:
    """Change the narrative; refused while published (reopen it first)."""
    cleaned: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in EDITABLE_FIELDS:
            raise ServiceError("unknown field", key)
        cleaned[key] = clean_timeline(value) if key == "timeline" else _clean_text(value, key)
    with transaction.atomic():
        _locked(postmortem)
        if postmortem.is_published:
            raise ServiceError(
                "a published postmortem is read-only; reopen it for editing first",
                None,
                "published",
            )
        changed = [k for k, v in cleaned.items() if getattr(postmortem, k) != v]
        if not changed:
            return postmortem
        for key in changed:
            setattr(postmortem, key, cleaned[key])
        postmortem.updated_at = timezone.now()
        postmortem.save(update_fields=[*changed, "updated_at"])
        _event("postmortem.updated", postmortem, actor=actor, payload={"changed": changed})
    return postmortem


def set_status(postmortem: Postmortem, status: str, *, actor: Any) -> Postmortem:
    """Draft → in review → published, and back to draft to reopen a published one."""
    if status not in PostmortemStatus.values:
        raise ServiceError(f"one of {', '.join(PostmortemStatus.values)}", "status")
    with transaction.atomic():
        _locked(postmortem)
        if postmortem.status == status:
            return postmortem
        if not postmortem.may_become(status):
            raise ServiceError(
                f"a {postmortem.get_status_display().lower()} postmortem cannot go to "
                f"{PostmortemStatus(status).label.lower()}",
                "status",
                "transition",
            )
        if status == PostmortemStatus.PUBLISHED:
            resolved = Incident.objects.filter(pk=postmortem.incident_id, resolved_at__isnull=False)
            if not resolved.exists():
                raise ServiceError(
                    "resolve the incident before publishing its postmortem", "status", "open"
                )
        before = postmortem.status
        postmortem.status = status
        now = timezone.now()
        postmortem.published_at = now if status == PostmortemStatus.PUBLISHED else None
        postmortem.updated_at = now
        postmortem.save(update_fields=["status", "published_at", "updated_at"])
        _event(STATUS_EVENTS[status], postmortem, actor=actor, payload={"status": [before, status]})
    return postmortem


def save(
    postmortem: Postmortem, *, actor: Any, status: str | None = None, **changes: Any
) -> Postmortem:
    """Edits and a status change together, all or nothing: reopen first, publish last."""
    with transaction.atomic():
        if status is not None and postmortem.is_published:
            set_status(postmortem, status, actor=actor)
        if changes:
            update(postmortem, actor=actor, **changes)
        if status is not None and not postmortem.is_published:
            set_status(postmortem, status, actor=actor)
    return postmortem


def publish(postmortem: Postmortem, *, actor: Any) -> Postmortem:
    return set_status(postmortem, PostmortemStatus.PUBLISHED, actor=actor)


def _touch(postmortem: Postmortem) -> None:
    Postmortem.objects.filter(pk=postmortem.pk).update(updated_at=timezone.now())


def add_action_item(
    postmortem: Postmortem,
    *,
    actor: Any,
    title: str,
    owner: Any = None,
    due_date: Any = None,
    tracker_url: str = "",
) -> ActionItem:
    title = _clean_title(title)
    owner = _clean_owner(postmortem, owner)
    due = _clean_due(due_date)
    url = _clean_url(tracker_url)
    with transaction.atomic():
        _locked(postmortem)
        existing = postmortem.action_items.aggregate(n=Max("position"), count=Count("id"))
        if existing["count"] >= MAX_ACTION_ITEMS:
            raise ServiceError(f"at most {MAX_ACTION_ITEMS} action items", None, "too_many")
        item = ActionItem.objects.create(
            postmortem=postmortem,
            title=title,
            owner=owner,
            due_date=due,
            tracker_url=url,
            position=(existing["n"] or 0) + 1,
        )
        _touch(postmortem)
        _event("postmortem.action_item_added", postmortem, actor=actor, payload=item.snapshot())
    return item


def update_action_item(item: ActionItem, *, actor: Any, **changes: Any) -> ActionItem:
    """Change an item; completing or reopening it records its own event kind."""
    postmortem = item.postmortem
    cleaned: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "title":
            cleaned[key] = _clean_title(value)
        elif key == "owner":
            cleaned[key] = _clean_owner(postmortem, value)
        elif key == "due_date":
            cleaned[key] = _clean_due(value)
        elif key == "tracker_url":
            cleaned[key] = _clean_url(value)
        elif key == "status":
            cleaned[key] = _clean_item_status(value)
        else:
            raise ServiceError("unknown field", key)
    with transaction.atomic():
        fresh = ActionItem.objects.select_for_update().get(pk=item.pk)
        for field in ActionItem._meta.concrete_fields:
            setattr(item, field.attname, getattr(fresh, field.attname))
        changed = []
        for key, value in cleaned.items():
            attname = "owner_id" if key == "owner" else key
            current = getattr(item, attname)
            new = value.pk if key == "owner" and value is not None else value
            if current != new:
                changed.append(key)
                setattr(item, key, value)
        if not changed:
            return item
        fields = list(changed)
        if "status" in changed:
            item.done_at = timezone.now() if item.status == ActionItemStatus.DONE else None
            fields.append("done_at")
        item.save(update_fields=fields)
        _touch(postmortem)
        if changed == ["status"]:
            kind = (
                "postmortem.action_item_done"
                if item.status == ActionItemStatus.DONE
                else "postmortem.action_item_reopened"
            )
        else:
            kind = "postmortem.action_item_updated"
        _event(kind, postmortem, actor=actor, payload={**item.snapshot(), "changed": changed})
    return item


def complete_action_item(item: ActionItem, *, actor: Any) -> ActionItem:
    return update_action_item(item, actor=actor, status=ActionItemStatus.DONE)


def delete_action_item(item: ActionItem, *, actor: Any) -> None:
    postmortem = item.postmortem
    with transaction.atomic():
        snapshot = item.snapshot()
        item.delete()
        _touch(postmortem)
        _event("postmortem.action_item_deleted", postmortem, actor=actor, payload=snapshot)
