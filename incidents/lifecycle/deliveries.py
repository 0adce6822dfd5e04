"""What became of the pages on an incident's timeline and escalation panel.

An ``incident.escalated`` event says whom a step paged; the outbox rows (``Delivery``) say
whether each page reached them. One query reads the incident's rows, grouped here in Python
by the escalation key written into each row's ``dedup_key`` (``incident:1:round:0:step:2:
user:7:rule-3``) so each "Escalation step N paged X" line carries, per recipient and channel,
sent / retrying at T / failed with the error. Errors are shortened and stripped of URLs (a
webhook URL may hold a token; signed links never appear): only a host is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incidents.models import ChannelKind, Delivery, DeliveryStatus, Incident

ERROR_LENGTH = 160
_KEY = re.compile(r"^incident:\d+:round:(\d+):step:(\d+):user:(\d+)(?::|$)")
_RESOLVED_KEY = re.compile(r"^incident:\d+:resolved:(\d+):")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s@]+@)?([^/\s:?#@]+)[^\s'\"<>]*", re.I)
_KIND_LABELS = dict(ChannelKind.choices)


@dataclass(frozen=True)
class DeliveryState:
    """One page to one person through one channel, as the incident page shows it."""

    pk: int
    recipient: str
    channel: str
    status: str  # "sent" | "pending" | "sending" | "failed" | "suppressed"
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    error: str

    @property
    def css(self) -> str:
        return {
            "sent": "badge-ok",
            "failed": "badge-critical",
            "suppressed": "badge-muted",
        }.get(self.status, "badge-warning")

    @property
    def retrying(self) -> bool:
        return self.status == DeliveryStatus.PENDING and self.attempts > 0


def short_error(text: str) -> str:
    """The first line of an error, URLs cut down to their host, at most ERROR_LENGTH chars."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    line = _URL.sub(lambda m: f"<{m.group(2)}>", line)
    return line if len(line) <= ERROR_LENGTH else line[: ERROR_LENGTH - 1] + "…"


@dataclass
class IncidentDeliveries:
    """The incident's deliveries, by escalation key and by resolution."""

    by_step: dict[tuple[int, int, int], list[DeliveryState]]
    resolved: dict[int, list[DeliveryState]]  # by the ``incident.resolved`` event's id
    all: list[DeliveryState]

    def for_event(self, payload: dict[str, Any]) -> list[DeliveryState]:
        """The deliveries of the pages one ``incident.escalated`` event announced."""
        round_, step = int(payload.get("round") or 0), int(payload.get("step") or 0)
        found: list[DeliveryState] = []
        for user_id in payload.get("user_ids") or []:
            found.extend(self.by_step.get((round_, step, int(user_id)), []))
        return found


def for_incident(incident: Incident, users: dict[int, str]) -> IncidentDeliveries:
    """All of the incident's deliveries in one query (no config, never a secret read)."""
    rows = (
        Delivery.objects.filter(incident=incident)
        .order_by("id")
        .values(
            "id",
            "dedup_key",
            "kind",
            "recipient_id",
            "recipient__username",
            "contact_method__label",
            "channel__name",
            "status",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "last_error",
        )
    )
    by_step: dict[tuple[int, int, int], list[DeliveryState]] = {}
    resolved: dict[int, list[DeliveryState]] = {}
    every: list[DeliveryState] = []
    for row in rows:
        state = _state(row, users)
        every.append(state)
        match = _KEY.match(row["dedup_key"])
        if match:
            key = (int(match[1]), int(match[2]), int(match[3]))
            by_step.setdefault(key, []).append(state)
        elif match := _RESOLVED_KEY.match(row["dedup_key"]):
            resolved.setdefault(int(match[1]), []).append(state)
    return IncidentDeliveries(by_step, resolved, every)


def _state(row: dict[str, Any], users: dict[int, str]) -> DeliveryState:
    kind = str(_KIND_LABELS.get(row["kind"], row["kind"]))
    if row["channel__name"]:
        channel = f"{kind} channel “{row['channel__name']}”"
    elif row["contact_method__label"]:
        channel = row["contact_method__label"]
    elif row["dedup_key"].endswith(":account-email"):
        channel = "account e-mail"
    else:
        channel = kind
    recipient = (
        users.get(row["recipient_id"])
        or row["recipient__username"]
        or (row["channel__name"] and "the team")
        or "a former user"
    )
    status = row["status"]
    pending = status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
    return DeliveryState(
        pk=row["id"],
        recipient=recipient,
        channel=channel,
        status=status,
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"] if pending else None,
        sent_at=row["sent_at"],
        error="" if status == DeliveryStatus.SENT else short_error(row["last_error"]),
    )
