"""Silences: mute alerts matching label matchers for a while, like Alertmanager's.

The one way to create and end them (API, admin, UI, the one-click silence): validate, write and
record an event in the same transaction, then re-evaluate the team's firing alerts at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from monitoring.matchers import EQUAL, Matcher, to_stored
from monitoring.models import Alert, AlertStatus, Silence
from monitoring.suppression.common import check_service_team, clean_matchers, team_id_of
from monitoring.suppression.evaluate import reevaluate_team
from tocsin.events import record
from tocsin.services import ServiceError

# A preview lists this many of the alerts a silence would mute (and counts them all).
PREVIEW_LIMIT = 50
# The longest a silence lasts, and how far ahead one may start: a year. Longer is a mistake
# (or a 500 waiting to happen: dates past the year 9999 do not exist).
MAX_SILENCE_DURATION = timedelta(days=365)
SILENCE_TOO_LONG = "a silence lasts at most 365 days"


def create_silence(
    *,
    team: Any,
    matchers: Any,
    ends_at: datetime | None = None,
    duration: timedelta | None = None,
    starts_at: datetime | None = None,
    comment: str = "",
    service: Any = None,
    actor: Any = None,
    now: datetime | None = None,
) -> Any:
    """Silence matching alerts from ``starts_at`` (default now) until ``ends_at`` or for
    ``duration``. Like Alertmanager, a silence needs a matcher that an absent label does not
    satisfy, so it can never silence every alert of the team by accident."""
    now = now or timezone.now()
    parsed = _clean_silence_matchers(matchers)
    check_service_team(service, team)
    starts_at = starts_at or now
    if (ends_at is None) == (duration is None):
        raise ServiceError("give either ends_at or duration (exactly one)", "ends_at")
    if starts_at - now > MAX_SILENCE_DURATION:
        raise ServiceError("must lie at most 365 days ahead", "starts_at")
    if duration is not None:
        if duration <= timedelta(0):
            raise ServiceError("the duration must be positive", "duration")
        if duration > MAX_SILENCE_DURATION:
            raise ServiceError(SILENCE_TOO_LONG, "duration")
        try:
            ends_at = starts_at + duration
        except OverflowError:  # starts_at near the year 9999
            raise ServiceError(
                "starts_at plus the duration lies past the year 9999", "duration"
            ) from None
    if ends_at <= starts_at:
        raise ServiceError("must be later than starts_at", "ends_at")
    if ends_at <= now:
        raise ServiceError("must lie in the future", "ends_at")
    if ends_at - starts_at > MAX_SILENCE_DURATION:
        raise ServiceError(SILENCE_TOO_LONG, "ends_at")
    with transaction.atomic():
        silence = Silence.objects.create(
            team_id=team_id_of(team),
            service=service,
            matchers=to_stored(parsed),
            starts_at=starts_at,
            ends_at=ends_at,
            comment=comment or "",
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        record(
            "silence.created",
            team=silence.team_id,
            subject=silence,
            actor=actor,
            payload=_silence_payload(silence),
        )
    reevaluate_team(silence.team_id, actor=actor)
    return silence


def _clean_silence_matchers(matchers: Any) -> list[Matcher]:
    parsed = clean_matchers(matchers, "matchers")
    if all(m.matches_empty() for m in parsed):
        raise ServiceError(
            "at least one matcher must not match an empty label (such a silence would mute "
            "every alert)",
            "matchers",
        )
    return parsed


def preview_silence(
    *, team: Any, matchers: Any, service: Any = None, limit: int = PREVIEW_LIMIT
) -> tuple[list[Alert], int]:
    """The team's firing alerts a silence with these matchers would mute, newest change
    first (at most ``limit``), and how many there are: the same validation as
    ``create_silence`` and the same ``Silence.matches`` the pipeline asks."""
    parsed = _clean_silence_matchers(matchers)
    check_service_team(service, team)
    probe = Silence(
        team_id=team_id_of(team),
        service_id=getattr(service, "pk", service),
        matchers=to_stored(parsed),
    )
    firing = Alert.objects.filter(team_id=probe.team_id, status=AlertStatus.FIRING)
    if probe.service_id is not None:
        firing = firing.filter(service_id=probe.service_id)
    # Labels are matched in Python (regexes, absent labels): read only what that needs first.
    candidates = firing.only("id", "team_id", "service_id", "labels", "last_change_at")
    matched = [
        alert.pk
        for alert in candidates.order_by("-last_change_at", "-id").iterator(chunk_size=2000)
        if probe.matches(alert)
    ]
    shown = (
        Alert.objects.filter(pk__in=matched[:limit])
        .select_related("service")
        .defer("description", "details", "recent_changes")
        .order_by("-last_change_at", "-id")
    )
    return list(shown), len(matched)


def _silence_payload(silence: Any) -> dict[str, Any]:
    return {
        "silence_id": silence.pk,
        "matchers": silence.matchers,
        "label": silence.label,
        "service_id": silence.service_id,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "comment": silence.comment,
    }


def expire_silence(silence: Any, *, actor: Any = None, now: datetime | None = None) -> Any:
    """End a silence now (a pending one never starts); alerts it muted page again at once."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Silence.objects.select_for_update().get(pk=silence.pk)
        if locked.ends_at <= now:
            raise ServiceError("this silence has already ended", None, "already_ended")
        planned_end = locked.ends_at
        locked.ends_at = now
        locked.starts_at = min(locked.starts_at, now)
        locked.expired_at = now
        locked.expired_by = actor if getattr(actor, "is_authenticated", False) else None
        locked.save(update_fields=["starts_at", "ends_at", "expired_at", "expired_by"])
        payload = _silence_payload(locked)
        payload["planned_ends_at"] = planned_end.isoformat()
        record("silence.expired", team=locked.team_id, subject=locked, actor=actor, payload=payload)
    for name in ("starts_at", "ends_at", "expired_at", "expired_by_id"):
        setattr(silence, name, getattr(locked, name))
    reevaluate_team(locked.team_id, now=now, actor=actor)
    return silence


def silence_alert(
    alert: Any, duration: timedelta, user: Any, comment: str = "", now: datetime | None = None
) -> Any:
    """The one-click silence: exactly this alert's labels, on its service, for ``duration``."""
    matchers = [Matcher(name, EQUAL, str(value)) for name, value in sorted(alert.labels.items())]
    if not matchers:
        raise ServiceError("this alert has no labels to silence it by", "matchers")
    return create_silence(
        team=alert.team_id,
        service=alert.service,
        matchers=matchers,
        duration=duration,
        comment=comment,
        actor=user,
        now=now,
    )
