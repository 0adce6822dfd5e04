"""Decides whether a firing alert is suppressed: silences, inhibition rules, maintenance windows.

The pipeline asks ``find_suppression(alert, now)`` whenever an alert (re)fires; the periodic
task ``reevaluate_suppressions`` (every minute) re-checks firing alerts when silences or windows
start and end and inhibiting alerts come and go. Creating or ending a silence re-evaluates its
team at once, so the Alerts page shows the effect without waiting for the task.

The services below are the one way to create and change silences, rules and windows (API,
admin, UI): they validate, write, and record an event in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.db import transaction
from django.utils import timezone

from monitoring.matchers import (
    EQUAL,
    NAME_RE,
    Matcher,
    MatcherError,
    format_matchers,
    to_matchers,
    to_stored,
)
from monitoring.models import (
    Alert,
    AlertStatus,
    InhibitionRule,
    MaintenanceWindow,
    Silence,
    Suppression,
)
from tocsin.events import record
from tocsin.services import ServiceError


@dataclass(frozen=True)
class Found:
    kind: str  # a monitoring.models.Suppression value
    object_id: int
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.object_id, "label": self.label}


@dataclass
class _TeamContext:
    """What one team's suppression decisions read, loaded lazily, once per call or pass.

    ``sources`` may be handed in (re-evaluation passes the firing alerts it already holds, and
    updates their ``suppression`` in memory as it goes, so later decisions of the same pass see
    earlier ones: two alerts that would inhibit each other settle with one muted, not both).
    """

    team_id: int
    now: datetime
    sources: list[Alert] | None = None
    _silences: list[Silence] | None = None
    _rules: list[InhibitionRule] | None = None
    _windows: dict[int, list[MaintenanceWindow]] = field(default_factory=dict)
    _all_windows_loaded: bool = False

    def windows(self, service_id: int) -> list[MaintenanceWindow]:
        if service_id not in self._windows and not self._all_windows_loaded:
            self._windows[service_id] = list(
                MaintenanceWindow.objects.filter(service_id=service_id).current_candidates(self.now)
            )
        return self._windows.get(service_id, [])

    def preload_windows(self) -> None:
        """All candidate windows of the team's services in one query (for re-evaluation)."""
        rows = MaintenanceWindow.objects.filter(service__team_id=self.team_id)
        for window in rows.current_candidates(self.now):
            self._windows.setdefault(window.service_id, []).append(window)
        self._all_windows_loaded = True

    def silences(self) -> list[Silence]:
        if self._silences is None:
            rows = Silence.objects.filter(team_id=self.team_id).active(self.now).order_by("id")
            self._silences = list(rows)
        return self._silences

    def rules(self) -> list[InhibitionRule]:
        if self._rules is None:
            rows = InhibitionRule.objects.filter(team_id=self.team_id, enabled=True).order_by("id")
            self._rules = list(rows)
        return self._rules

    def source_alerts(self) -> list[Alert]:
        if self.sources is None:
            self.sources = list(
                Alert.objects.filter(team_id=self.team_id, status=AlertStatus.FIRING)
                .exclude(suppression=Suppression.INHIBITED)
                .only("id", "team_id", "service_id", "fingerprint", "labels", "suppression")
                .order_by("id")
            )
        return self.sources


def find_suppression(
    alert: Any, now: datetime, context: _TeamContext | None = None
) -> Found | None:
    """What suppresses ``alert`` at ``now``, or None. Maintenance first, then silences, then
    inhibition (the order Alertmanager reports them in a UI is not significant).

    Costs at most four queries for one alert (windows, silences, rules, inhibiting alerts), the
    last only when a rule targets the alert; a shared ``context`` makes them once per team.
    """
    ctx = context or _TeamContext(alert.team_id, now)
    for window in ctx.windows(alert.service_id):
        if window.occurrence_at(now) is not None:
            return Found(Suppression.MAINTENANCE, window.pk, window.title)
    for silence in ctx.silences():
        if silence.matches(alert):
            return Found(Suppression.SILENCED, silence.pk, silence.label)
    rules = [rule for rule in ctx.rules() if rule.matches(alert)]
    if rules:
        for source in ctx.source_alerts():
            if source.suppression == Suppression.INHIBITED:
                continue  # muted alerts do not mute others (no chains, no mutual muting)
            for rule in rules:
                if rule.inhibits(source, alert):
                    return Found(Suppression.INHIBITED, rule.pk, rule.name)
    return None


# --- Re-evaluation ---------------------------------------------------------------------------


def _alert_payload(alert: Any, previous: dict[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": alert.pk,
        "service_id": alert.service_id,
        "service": alert.service.name,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "severity": alert.severity,
        "summary": alert.summary,
        "labels": alert.labels,
        "suppression": alert.suppression,
        "suppressed_by": alert.suppressed_by,
        "previous": previous,
    }


def reevaluate_team(team_id: int, now: datetime | None = None, actor: Any = None) -> int:
    """Re-check every firing alert of one team; returns how many changed."""
    now = now or timezone.now()
    alerts = list(
        Alert.objects.filter(team_id=team_id, status=AlertStatus.FIRING)
        .select_related("service")
        .order_by("id")
    )
    if not alerts:
        return 0
    ctx = _TeamContext(team_id, now, sources=alerts)
    ctx.preload_windows()
    changed = 0
    for alert in alerts:
        found = find_suppression(alert, now, ctx)
        kind, by = (found.kind, found.as_dict()) if found else (Suppression.NONE, {})
        if (alert.suppression, alert.suppressed_by) == (kind, by):
            continue
        with transaction.atomic():
            # Only if nothing else changed it meanwhile (a resolve, a re-fire, another pass).
            updated = Alert.objects.filter(
                pk=alert.pk, status=AlertStatus.FIRING, suppression=alert.suppression
            ).update(suppression=kind, suppressed_by=by)
            if not updated:
                continue
            previous = {"suppression": alert.suppression, "suppressed_by": alert.suppressed_by}
            alert.suppression, alert.suppressed_by = kind, by
            record(
                "alert.suppressed" if kind else "alert.unsuppressed",
                team=team_id,
                subject=alert,
                subject_label=alert.summary[:200],
                actor=actor,
                actor_label="" if actor else "suppression",
                payload=_alert_payload(alert, previous),
            )
        changed += 1
    return changed


def reevaluate_suppressions(now: datetime | None = None) -> int:
    """The periodic task: every team with firing alerts, one team at a time."""
    now = now or timezone.now()
    team_ids = (
        Alert.objects.filter(status=AlertStatus.FIRING)
        .order_by()
        .values_list("team_id", flat=True)
        .distinct()
    )
    return sum(reevaluate_team(team_id, now) for team_id in list(team_ids))


# --- Validation shared by the services -------------------------------------------------------


def _matchers(data: Any, field_name: str, *, required: bool = True) -> list[Matcher]:
    try:
        matchers = to_matchers(data if data is not None else [])
    except MatcherError as exc:
        raise ServiceError(str(exc), field_name) from None
    if required and not matchers:
        raise ServiceError('give at least one matcher, e.g. alertname="X"', field_name)
    return matchers


def _service_of_team(service: Any, team: Any) -> None:
    if service is not None and service.team_id != getattr(team, "pk", team):
        raise ServiceError("this service belongs to another team", "service")


def _team_id(team: Any) -> int:
    return team if isinstance(team, int) else team.pk


# --- Silences --------------------------------------------------------------------------------


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
    parsed = _matchers(matchers, "matchers")
    if all(m.matches_empty() for m in parsed):
        raise ServiceError(
            "at least one matcher must not match an empty label (such a silence would mute "
            "every alert)",
            "matchers",
        )
    _service_of_team(service, team)
    starts_at = starts_at or now
    if (ends_at is None) == (duration is None):
        raise ServiceError("give either ends_at or duration (exactly one)", "ends_at")
    if duration is not None:
        if duration <= timedelta(0):
            raise ServiceError("the duration must be positive", "duration")
        ends_at = starts_at + duration
    if ends_at <= starts_at:
        raise ServiceError("must be later than starts_at", "ends_at")
    if ends_at <= now:
        raise ServiceError("must lie in the future", "ends_at")
    with transaction.atomic():
        silence = Silence.objects.create(
            team_id=_team_id(team),
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


# --- Inhibition rules ------------------------------------------------------------------------

_RULE_FIELDS = ("name", "source_matchers", "target_matchers", "equal", "enabled", "service")


def clean_equal_labels(equal: Any) -> list[str]:
    if equal is None:
        return []
    if isinstance(equal, str):
        equal = [part.strip() for part in equal.split(",") if part.strip()]
    if not isinstance(equal, list | tuple) or not all(isinstance(n, str) for n in equal):
        raise ServiceError("a list of label names", "equal")
    for name in equal:
        if not NAME_RE.fullmatch(name):
            raise ServiceError(f"{name!r} is not a label name", "equal")
    return list(dict.fromkeys(equal))


def _rule_values(data: dict[str, Any], team: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in data:
        name = (data["name"] or "").strip()
        if not name:
            raise ServiceError("a rule needs a name", "name")
        out["name"] = name[:200]
    for key in ("source_matchers", "target_matchers"):
        if key in data:
            out[key] = to_stored(_matchers(data[key], key))
    if "equal" in data:
        out["equal"] = clean_equal_labels(data["equal"])
    if "enabled" in data:
        out["enabled"] = bool(data["enabled"])
    if "service" in data:
        _service_of_team(data["service"], team)
        out["service"] = data["service"]
    return out


def _rule_payload(rule: Any) -> dict[str, Any]:
    return {
        "rule_id": rule.pk,
        "name": rule.name,
        "source_matchers": rule.source_matchers,
        "target_matchers": rule.target_matchers,
        "equal": rule.equal,
        "enabled": rule.enabled,
        "service_id": rule.service_id,
    }


def create_inhibition_rule(
    *,
    team: Any,
    name: str,
    source_matchers: Any,
    target_matchers: Any,
    equal: Iterable[str] | str | None = None,
    enabled: bool = True,
    service: Any = None,
    actor: Any = None,
) -> Any:
    values = _rule_values(
        {
            "name": name,
            "source_matchers": source_matchers,
            "target_matchers": target_matchers,
            "equal": list(equal) if equal is not None and not isinstance(equal, str) else equal,
            "enabled": enabled,
            "service": service,
        },
        team,
    )
    with transaction.atomic():
        rule = InhibitionRule.objects.create(
            team_id=_team_id(team),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **values,
        )
        record(
            "inhibition.created",
            team=rule.team_id,
            subject=rule,
            actor=actor,
            payload=_rule_payload(rule),
        )
    reevaluate_team(rule.team_id, actor=actor)
    return rule


def update_inhibition_rule(rule: Any, *, actor: Any = None, **changes: Any) -> Any:
    unknown = set(changes) - set(_RULE_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
    values = _rule_values(changes, rule.team_id)
    before = _rule_payload(rule)
    changed = {
        k: v for k, v in values.items() if getattr(rule, "service" if k == "service" else k) != v
    }
    if not changed:
        return rule
    with transaction.atomic():
        for key, value in changed.items():
            setattr(rule, key, value)
        for cached in ("source_list", "target_list"):
            rule.__dict__.pop(cached, None)
        rule.updated_at = timezone.now()
        rule.save()
        after = _rule_payload(rule)
        record(
            "inhibition.updated",
            team=rule.team_id,
            subject=rule,
            actor=actor,
            payload={
                **after,
                "changes": {k: [before[k], after[k]] for k in after if before[k] != after[k]},
            },
        )
    reevaluate_team(rule.team_id, actor=actor)
    return rule


def delete_inhibition_rule(rule: Any, *, actor: Any = None) -> None:
    team_id = rule.team_id
    with transaction.atomic():
        record(
            "inhibition.deleted",
            team=team_id,
            subject=rule,
            actor=actor,
            payload=_rule_payload(rule),
        )
        rule.delete()
    reevaluate_team(team_id, actor=actor)


# --- Maintenance windows ---------------------------------------------------------------------

_WINDOW_FIELDS = (
    "title",
    "description",
    "starts_at",
    "ends_at",
    "weekdays",
    "start_time",
    "duration",
    "time_zone",
)
MAX_RECURRING_DURATION = timedelta(days=7)
_DURATION_RE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """``90m``, ``1h30m``, ``2d``, ``1w``: Alertmanager's (amtool's) way of writing durations."""
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 1h30m or 1d")
    w, d, h, m, s = (int(g or 0) for g in match.groups())
    return timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)


def _valid_zone(name: str) -> str:
    name = (name or "UTC").strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(
            f"unknown time zone {name!r}; use a name such as Europe/Berlin", "time_zone"
        ) from None
    return name


def _check_window(values: dict[str, Any]) -> dict[str, Any]:
    """The whole window must be either one-off or recurring, and sensible."""
    title = (values.get("title") or "").strip()
    if not title:
        raise ServiceError("a maintenance window needs a title", "title")
    values["title"] = title[:200]
    weekdays = values.get("weekdays") or []
    if not isinstance(weekdays, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays
    ):
        raise ServiceError("weekdays are numbers from 0 (Monday) to 6 (Sunday)", "weekdays")
    values["weekdays"] = sorted(set(weekdays))
    values["time_zone"] = _valid_zone(values.get("time_zone") or "UTC")
    if values["weekdays"]:
        if values.get("starts_at") or values.get("ends_at"):
            raise ServiceError(
                "a recurring window has weekdays, start_time and duration, not starts_at/ends_at",
                "starts_at",
            )
        if not isinstance(values.get("start_time"), time):
            raise ServiceError("a recurring window needs a start time", "start_time")
        duration = values.get("duration")
        if not isinstance(duration, timedelta) or duration <= timedelta(0):
            raise ServiceError("a recurring window needs a positive duration", "duration")
        if duration > MAX_RECURRING_DURATION:
            raise ServiceError("at most 7 days (it repeats every week)", "duration")
    else:
        if values.get("start_time") is not None or values.get("duration") is not None:
            raise ServiceError(
                "start_time and duration belong to recurring windows: give weekdays too",
                "weekdays",
            )
        starts_at, ends_at = values.get("starts_at"), values.get("ends_at")
        if starts_at is None:
            raise ServiceError(
                "a one-off window needs starts_at (or weekdays to recur)", "starts_at"
            )
        if ends_at is None:
            raise ServiceError("a one-off window needs ends_at", "ends_at")
        if ends_at <= starts_at:
            raise ServiceError("must be later than starts_at", "ends_at")
    return values


def _window_payload(window: Any) -> dict[str, Any]:
    return {
        "window_id": window.pk,
        "service_id": window.service_id,
        "title": window.title,
        "starts_at": window.starts_at.isoformat() if window.starts_at else None,
        "ends_at": window.ends_at.isoformat() if window.ends_at else None,
        "weekdays": window.weekdays,
        "start_time": window.start_time.isoformat() if window.start_time else None,
        "duration_seconds": window.duration.total_seconds() if window.duration else None,
        "time_zone": window.time_zone,
    }


def create_maintenance_window(*, service: Any, title: str, actor: Any = None, **fields: Any) -> Any:
    unknown = set(fields) - set(_WINDOW_FIELDS)
    if unknown:
        raise ServiceError(f"unknown field {sorted(unknown)[0]}", sorted(unknown)[0])
    values = _check_window({"title": title, **fields})
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            service=service,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **values,
        )
        record(
            "maintenance.created",
            team=service.team_id,
            subject=window,
            actor=actor,
            payload=_window_payload(window),
        )
    reevaluate_team(service.team_id, actor=actor)
    return window


def update_maintenance_window(window: Any, *, actor: Any = None, **changes: Any) -> Any:
    unknown = set(changes) - set(_WINDOW_FIELDS)
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
    current = {name: getattr(window, name) for name in _WINDOW_FIELDS}
    values = _check_window({**current, **changes})
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    if not changed:
        return window
    before = _window_payload(window)
    with transaction.atomic():
        for key, value in changed.items():
            setattr(window, key, value)
        window.save()
        after = _window_payload(window)
        record(
            "maintenance.updated",
            team=window.team_id,
            subject=window,
            actor=actor,
            payload={
                **after,
                "changes": {k: [before[k], after[k]] for k in after if before[k] != after[k]},
            },
        )
    reevaluate_team(window.team_id, actor=actor)
    return window


def delete_maintenance_window(window: Any, *, actor: Any = None) -> None:
    team_id = window.team_id
    with transaction.atomic():
        record(
            "maintenance.deleted",
            team=team_id,
            subject=window,
            actor=actor,
            payload=_window_payload(window),
        )
        window.delete()
    reevaluate_team(team_id, actor=actor)


def time_zone_names() -> list[str]:
    return sorted(available_timezones())


__all__ = [
    "Found",
    "create_inhibition_rule",
    "create_maintenance_window",
    "create_silence",
    "delete_inhibition_rule",
    "delete_maintenance_window",
    "expire_silence",
    "find_suppression",
    "format_matchers",
    "parse_duration",
    "reevaluate_suppressions",
    "reevaluate_team",
    "silence_alert",
    "update_inhibition_rule",
    "update_maintenance_window",
]
