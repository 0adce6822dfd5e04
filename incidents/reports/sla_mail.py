"""The monthly SLA report, mailed to each team's managers once a month.

``send_monthly_reports`` runs every hour (``incidents.apps``). In the first days of a month
(``SEND_DAYS``, counted in the report time zone, from ``GRACE`` after midnight so the last
minutes' rollups are in) it sends last month's report of every team with services to the
team's managers: plain text and HTML, with the CSV attached, through Django's mail API.

Once per team and month: the sending is recorded as a ``report.sla_sent`` event in the team's
event log (subject ``sla_report`` / ``<team id>:<YYYY-MM>``), checked before sending, inside a
transaction that locks the team's row so two workers cannot both send. The mail goes out in
that transaction: if the SMTP server refuses, the event rolls back and the next run tries
again (a failure part-way through a team's managers can repeat the mail to the first ones;
never losing a report is the better side to err on).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents.reports import sla
from incidents.reports.sla_presentation import context as report_context
from incidents.slas.services import SLA_SERVICE_SLUG
from monitoring.models import Service
from tocsin.events import record
from tocsin.models import Event, Team
from tocsin.permissions import Action, members_who_may

log = logging.getLogger(__name__)

SENT = "report.sla_sent"
SUBJECT_TYPE = "sla_report"
SEND_DAYS = 7  # a report not sent in the month's first week (worker down) is not sent late
GRACE = timedelta(minutes=15)


def subject_id(team: Team, month: date) -> str:
    return f"{team.pk}:{month:%Y-%m}"


def already_sent(team: Team, month: date) -> bool:
    return Event.objects.filter(
        subject_type=SUBJECT_TYPE, subject_id=subject_id(team, month), kind=SENT
    ).exists()


def due_month(now: datetime, time_zone: str) -> date | None:
    """Last month, when ``now`` is in the first ``SEND_DAYS`` days of this one (after the
    grace); None otherwise."""
    zone = ZoneInfo(time_zone)
    month = sla.last_month(now.astimezone(zone).date())
    _, end = sla.month_bounds(month, zone)
    if now < end + GRACE or now >= end + timedelta(days=SEND_DAYS):
        return None
    return month


def send_monthly_reports(now: datetime | None = None) -> dict[str, int]:
    """The periodic task: last month's report to every team's managers, once."""
    now = now or timezone.now()
    time_zone = sla.default_time_zone()
    month = due_month(now, time_zone)
    counts = {"sent": 0, "skipped": 0, "failed": 0}
    if month is None:
        return counts
    with_services = Service.objects.exclude(slug=SLA_SERVICE_SLUG).values("team_id")
    for team in Team.objects.filter(pk__in=with_services).order_by("pk"):
        try:
            sent = send_team_report(team, month, now=now, time_zone=time_zone)
        except Exception:
            log.exception("the SLA report of %s for %s could not be sent", team, month)
            counts["failed"] += 1
            continue
        counts["sent" if sent else "skipped"] += 1
    return counts


def send_team_report(
    team: Team, month: date, *, now: datetime | None = None, time_zone: str | None = None
) -> bool:
    """Mail ``team``'s report of ``month`` to its managers unless it was sent already (or the
    team has no manager with an address); whether it was sent now."""
    time_zone = time_zone or sla.default_time_zone()
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=team.pk).values_list("pk").first()
        if already_sent(team, month):
            return False
        recipients = list(
            members_who_may(Action.MANAGE, team).exclude(email="").values_list("email", flat=True)
        )
        if not recipients:
            return False
        report = sla.build(team, month, time_zone=time_zone, now=now)
        messages = [compose(report, address) for address in recipients]
        record(
            SENT,
            team=team,
            subject_type=SUBJECT_TYPE,
            subject_id=subject_id(team, month),
            subject_label=f"SLA report {report.label}",
            actor_label="Tocsin",
            payload={
                "month": f"{month:%Y-%m}",
                "time_zone": time_zone,
                "recipients": recipients,
            },
        )
        connection = get_connection(timeout=getattr(settings, "EMAIL_TIMEOUT", 10))
        connection.send_messages(messages)
    return True


def links(report: sla.SlaReport) -> dict[str, str]:
    base = settings.TOCSIN_BASE_URL.rstrip("/")
    query = "?" + urlencode({"month": f"{report.month:%Y-%m}", "tz": report.time_zone})
    slug = report.team.slug
    return {
        "page": base + reverse("sla_report", args=[slug]) + query,
        "print": base + reverse("sla_report_print", args=[slug]) + query,
        "csv": base + reverse("sla_report_csv", args=[slug]) + query,
    }


def compose(report: sla.SlaReport, address: str) -> EmailMultiAlternatives:
    context: dict[str, Any] = {
        **report_context(report),
        "team": report.team,
        "links": links(report),
    }
    missed = context["missed"]
    verdict = (
        f"{missed} of {len(report.services)} services missed the target"
        if missed
        else "all measured services met the target"
    )
    message = EmailMultiAlternatives(
        subject=f"SLA report {report.label}: {report.team} ({verdict})",
        body=render_to_string("incidents/sla_mail.txt", context),
        to=[address],
    )
    message.attach_alternative(render_to_string("incidents/sla_mail.html", context), "text/html")
    message.attach(
        f"tocsin-sla-{report.team.slug}-{report.month:%Y-%m}.csv",
        report.to_csv(),
        "text/csv",
    )
    return message
