"""The security page's figures (issue #14): what a staff member checks over coffee.

Sign-ins that failed in the last day (by account and address) and what is locked now; who has a
second factor, and who must and has none; API tokens about to expire or unused for 90 days; the
latest changes made in the admin. Each section is one or two aggregate queries whatever the
numbers, so the page costs the same for ten users or ten thousand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Max, OuterRef, Q, Sum
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from tocsin.models import ApiToken, Event, Membership
from tocsin.security.addresses import counted_label
from tocsin.security.signin import cool_off

FAILED_WINDOW = timedelta(hours=24)
EXPIRING_WITHIN = timedelta(days=14)
UNUSED_FOR = timedelta(days=90)
LIMIT = 20  # rows per list: the page is a summary; the admin and the audit page hold the rest


@dataclass
class Overview:
    failed: list[dict[str, Any]] = field(default_factory=list)  # {username, ip, count, last}
    failed_total: int = 0
    locked: list[dict[str, Any]] = field(default_factory=list)  # {username, ip, failures, until}
    users: int = 0
    with_two_factor: int = 0
    missing_two_factor: list[Any] = field(default_factory=list)  # users who must and have none
    expiring: list[ApiToken] = field(default_factory=list)
    unused: list[ApiToken] = field(default_factory=list)
    admin_changes: list[LogEntry] = field(default_factory=list)

    @property
    def adoption(self) -> float | None:
        return self.with_two_factor / self.users if self.users else None


def may_see(user: Any) -> bool:
    """Staff and administrators: the page names accounts and addresses of every team."""
    return bool(user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser))


def overview(now: datetime) -> Overview:
    found = Overview()
    _sign_ins(found, now)
    _two_factor(found)
    _tokens(found, now)
    found.admin_changes = list(
        LogEntry.objects.select_related("user", "content_type").order_by("-action_time")[:LIMIT]
    )
    return found


def _sign_ins(found: Overview, now: datetime) -> None:
    failures = Event.objects.filter(kind="user.login_failed", created_at__gte=now - FAILED_WINDOW)
    grouped = (
        failures.values("subject_label", "ip")
        .annotate(count=Count("id"), last=Max("created_at"))
        .order_by("-count", "-last")
    )
    found.failed = [
        {
            "username": row["subject_label"],
            "ip": row["ip"] or "",
            "count": row["count"],
            "last": row["last"],
        }
        for row in grouped[:LIMIT]
    ]
    found.failed_total = failures.count()
    # Locked as axes locks: by the sum of an account's failures (from any address) or of an
    # address's failures (for any account) within the lockout window.
    window = cool_off()
    recent = AccessAttempt.objects.filter(attempt_time__gte=now - window)
    limit = settings.AXES_FAILURE_LIMIT
    locked: list[dict[str, Any]] = []
    for key in ("username", "ip_address"):
        rows = (
            # (An address is NULL when unknown; a blank one would compare as NULL and hide all.)
            recent.exclude(**({key: ""} if key == "username" else {}))
            .exclude(**{f"{key}__isnull": True})
            .values(key)
            .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            .filter(failures__gte=limit)
            .order_by("-last")
        )
        for row in rows[:LIMIT]:
            locked.append(
                {
                    "username": row[key] if key == "username" else "",
                    "ip": counted_label(row[key]) if key == "ip_address" else "",
                    "failures": row["failures"],
                    "until": row["last"] + window,
                }
            )
    found.locked = sorted(locked, key=lambda row: row["until"], reverse=True)[:LIMIT]


def _two_factor(found: Overview) -> None:
    users = get_user_model().objects.filter(is_active=True)
    has_device = Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)) | Exists(
        StaticDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    )
    must = Exists(Membership.objects.filter(user=OuterRef("pk"), team__require_two_factor=True))
    if settings.TOCSIN_2FA_REQUIRED_FOR_STAFF:
        must = must | Q(is_staff=True) | Q(is_superuser=True)
    counts = users.aggregate(total=Count("pk"), enrolled=Count("pk", filter=has_device))
    found.users, found.with_two_factor = counts["total"], counts["enrolled"]
    found.missing_two_factor = list(
        users.filter(must).exclude(has_device).order_by("username")[:LIMIT]
    )


def _tokens(found: Overview, now: datetime) -> None:
    active = ApiToken.objects.usable().select_related("user")
    found.expiring = list(
        active.filter(expires_at__lte=now + EXPIRING_WITHIN).order_by("expires_at")[:LIMIT]
    )
    stale = now - UNUSED_FOR
    found.unused = list(
        active.filter(
            Q(last_used_at__lt=stale) | Q(last_used_at__isnull=True, created_at__lt=stale)
        ).order_by("created_at")[:LIMIT]
    )
