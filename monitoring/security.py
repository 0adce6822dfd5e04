"""Security alerts: tocsin's sign-in protection and admin watch record events; this module turns
them into alerts on the built-in "Tocsin (system)" team, through the pipeline like any alert (so
they group into incidents, page whoever is on call there, and show on the dashboard).

- ``security.signin_locked``: an account or address is being brute-forced. One alert per account
  (or per address, for wrong API tokens); it ends by itself when the lockout does, and a new
  lockout of the same account fires it again.
- ``security.admin_granted``: someone became a superuser or staff. One alert per user; it ends
  by itself after a day (the incident it opened stays until a person resolves it).

Subscribed with ``on_event`` (tocsin must not import monitoring), so the alert commits or rolls
back with the event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from monitoring.inputs import AlertInput
from monitoring.models import Service, Severity
from tocsin.events import on_event
from tocsin.models import Event

SOURCE = "security"
ADMIN_ALERT_LASTS = timedelta(days=1)


def security_service() -> Service:
    """The system team's "Tocsin security" service, shared with the audit check."""
    from monitoring.audit_check import security_service as shared

    return shared()


def _raise(item: AlertInput) -> None:
    from monitoring.pipeline import raise_alert

    raise_alert(security_service(), item, source=SOURCE)


def signin_locked(event: Event, subject: Any) -> None:
    """A lockout of a real account pages (critical, one alert per account). Lockouts of names
    no account has, or of addresses alone (wrong API tokens), share one warning alert each: a
    caller inventing names or rotating addresses must not be able to page on-call at will, nor
    put text of its choosing into alerts (the event log and the security page keep each one)."""
    payload = event.payload
    username, address = payload["username"], payload["ip"]
    until = datetime.fromisoformat(payload["locked_until"])
    known = bool(username) and _is_account(username)
    if known:
        who, fingerprint, severity = f"account {username!r}", f"signin-locked-{username}", None
    elif username:
        who, fingerprint = "account names that do not exist", "signin-locked-unknown-accounts"
        severity = Severity.WARNING
    else:
        who, fingerprint, severity = "client addresses", "signin-locked-addresses", Severity.WARNING
    labels = {"alertname": "SignInBruteForce", "address": address}
    if known:
        labels["username"] = username
    _raise(
        AlertInput(
            labels=labels,
            fingerprint=fingerprint,
            severity=severity or Severity.CRITICAL,
            summary=f"Sign-in locked for {who} after repeated failures",
            description=(
                f"{payload['failures']} failed sign-ins for {who} (last from "
                f"{address or 'an unknown address'}); sign-ins are refused until "
                f"{until:%Y-%m-%d %H:%M:%S} UTC. Every lockout is on the security page."
            ),
            details={"event_id": event.pk, "address": address, "known_account": known},
            expected_end_at=until,
        )
    )


def _is_account(name: str) -> bool:
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    users = get_user_model().objects
    return users.filter(Q(username__iexact=name) | Q(email__iexact=name)).exists()


def admin_granted(event: Event, subject: Any) -> None:
    payload = event.payload
    username = payload.get("username") or event.subject_label
    names = {"is_superuser": "superuser", "is_staff": "staff"}
    granted = " and ".join(names.get(flag, flag) for flag in payload["granted"])
    actor = event.actor_label or "someone without a session (a command or a script)"
    _raise(
        AlertInput(
            labels={"alertname": "NewAdministrator", "username": username},
            fingerprint=f"admin-granted-{payload['user_id']}",
            severity=Severity.WARNING,
            summary=f"{username!r} became {granted}",
            description=f"{actor} made {username!r} {granted}. If nobody meant to, act now.",
            details={"event_id": event.pk, **payload},
            expected_end_at=timezone.now() + ADMIN_ALERT_LASTS,
        )
    )


def subscribe() -> None:
    on_event("security.signin_locked", signin_locked)
    on_event("security.admin_granted", admin_granted)
