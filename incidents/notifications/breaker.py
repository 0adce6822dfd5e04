"""A circuit breaker per channel: a receiver that keeps failing stops being hammered and says so.

After BREAKER_THRESHOLD failures in a row the channel opens for BREAKER_COOLDOWN and an alert
fires on the team's internal "Tocsin notifications" service (through the monitoring pipeline,
so it groups, pages and shows like any alert); the first success closes it and resolves the
alert."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F

from incidents.models import (
    NotificationChannel,
)
from incidents.notifications.channels import SendResult

# --- Circuit breaker ----------------------------------------------------------------------------

logger = logging.getLogger(__name__)

BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN = timedelta(minutes=5)
INTERNAL_SERVICE_NAME = "Tocsin notifications"
INTERNAL_SERVICE_SLUG = "tocsin-notifications"
SOURCE = "notifier"


def breaker_fingerprint(channel: NotificationChannel) -> str:
    return f"notification-channel-{channel.pk}"


def _internal_service(channel: NotificationChannel) -> Any:
    from monitoring.services import ensure_internal_service

    return ensure_internal_service(
        channel.team_id,
        slug=INTERNAL_SERVICE_SLUG,
        name=INTERNAL_SERVICE_NAME,
        integration_name="Notifier",
        description="Alerts Tocsin raises about its own notification channels.",
    )


def channel_failed(channel: NotificationChannel, result: SendResult, now: datetime) -> None:
    NotificationChannel.objects.filter(pk=channel.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    channel.refresh_from_db(fields=["consecutive_failures", "open_until"])
    if channel.consecutive_failures < BREAKER_THRESHOLD:
        return
    channel.open_until = now + BREAKER_COOLDOWN
    NotificationChannel.objects.filter(pk=channel.pk).update(open_until=channel.open_until)
    from monitoring.pipeline import AlertInput, raise_alert

    logger.warning("notification channel %s: breaker open until %s", channel.pk, channel.open_until)
    raise_alert(
        _internal_service(channel),
        AlertInput(
            labels={
                "alertname": "NotificationChannelFailing",
                "channel": channel.name,
                "channel_kind": channel.kind,
            },
            fingerprint=breaker_fingerprint(channel),
            severity="critical",
            summary=f"Notification channel {channel.name!r} is failing",
            description=(
                f"{channel.consecutive_failures} consecutive failures (last: {result.error}); "
                f"its deliveries are held until {channel.open_until.isoformat()} and retried."
            ),
        ),
        source=SOURCE,
    )


def channel_succeeded(channel: NotificationChannel) -> None:
    if channel.consecutive_failures == 0 and channel.open_until is None:
        return
    was_tripped = channel.consecutive_failures >= BREAKER_THRESHOLD
    NotificationChannel.objects.filter(pk=channel.pk).update(
        consecutive_failures=0, open_until=None
    )
    channel.consecutive_failures, channel.open_until = 0, None
    if was_tripped:
        from monitoring.pipeline import resolve_alert

        resolve_alert(_internal_service(channel), breaker_fingerprint(channel), source=SOURCE)
