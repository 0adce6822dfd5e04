"""The lines people paste: the ping URL, a curl call and a crontab entry for a heartbeat."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from probes.heartbeats.models import Heartbeat

CURL = "curl -fsS -m 10 --retry 5 -o /dev/null"


def ping_url(heartbeat: Heartbeat) -> str:
    return settings.TOCSIN_BASE_URL + reverse("heartbeat-ping", args=[heartbeat.uuid])


def slug_url(heartbeat: Heartbeat, key: str) -> str:
    return settings.TOCSIN_BASE_URL + reverse("heartbeat-slug", args=[key, heartbeat.slug])


def curl_line(heartbeat: Heartbeat) -> str:
    return f"{CURL} {ping_url(heartbeat)}"


def cron_expression(heartbeat: Heartbeat) -> str:
    """The heartbeat's cron expression, or the nearest crontab schedule for its period."""
    if heartbeat.cron:
        return heartbeat.cron
    minutes = (heartbeat.period or 0) // 60
    if 0 < minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes and minutes % 60 == 0 and minutes < 1440 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 1440:
        return "0 0 * * *"
    if minutes == 10080:
        return "0 0 * * 0"
    return "0 0 * * *"


def crontab_line(heartbeat: Heartbeat, command: str = "/path/to/job.sh") -> str:
    """A crontab entry that reports the job's start and its exit status (0 success, else
    failure), so run times and failures are seen, not only absence."""
    url = ping_url(heartbeat)
    line = f"{cron_expression(heartbeat)} {CURL} {url}/start; {command}; {CURL} {url}/$?"
    if heartbeat.cron and heartbeat.timezone != "UTC":
        return f"CRON_TZ={heartbeat.timezone}\n{line}"
    return line
