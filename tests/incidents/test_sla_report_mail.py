"""The monthly SLA report mail: to the team's managers, through a real SMTP server (aiosmtpd),
once per team and month, in the month's first days."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.test import override_settings

from incidents.reports import sla_mail
from tests.incidents.test_sla_report_pages import make_service
from tests.live import free_port
from tocsin.models import Event
from tocsin.scheduling import registered

pytestmark = pytest.mark.django_db

APRIL_FIRST = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _utc_reports():
    with override_settings(TOCSIN_SLA_TIME_ZONE="UTC"):
        yield


def parts(message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        name = part.get_filename() or part.get_content_type()
        found[name] = part.get_payload(decode=True).decode()
    return found


def test_last_months_report_goes_to_the_managers_once(crew, smtp):
    service = make_service(crew.team, "Checkout API")
    assert sla_mail.send_monthly_reports(APRIL_FIRST) == {"sent": 1, "skipped": 0, "failed": 0}

    [(recipients, message)] = smtp.messages
    assert recipients == ["manager@example.org"]  # not the viewer, responder or outsider
    assert message["Subject"] == (
        "SLA report March 2026: Payments (1 of 1 services missed the target)"
    )
    found = parts(message)
    text, html = found["text/plain"], found["text/html"]
    assert "Availability: 50.0000 % (target 99.9 %: missed)" in text
    assert "Downtime: 5 min (allowed 0.0) of 10 measured minutes" in text
    assert "Incidents opened: 1; MTTA 4.0 min; MTTR 10.0 min" in text
    assert 'maintenance "Upgrade": 2026-03-10 14:00 UTC to 2026-03-10 15:00 UTC' in text
    assert "https://tocsin.example.org/reports/sla/payments/print/?month=2026-03&tz=UTC" in text
    assert f'data-service-id="{service.pk}"' in html and "50.0000" in html
    rows = list(csv.reader(io.StringIO(found["tocsin-sla-payments-2026-03.csv"])))
    assert rows[1][3:6] == ["Checkout API", "99.9", "50.0000"]

    [event] = Event.objects.filter(kind="report.sla_sent")
    assert event.team == crew.team and event.subject_id == f"{crew.team.pk}:2026-03"
    assert event.payload == {
        "month": "2026-03",
        "time_zone": "UTC",
        "recipients": ["manager@example.org"],
    }

    # The next hourly runs find the event and send nothing.
    assert sla_mail.send_monthly_reports(APRIL_FIRST.replace(hour=7))["skipped"] == 1
    assert len(smtp.messages) == 1


def test_it_sends_only_in_the_first_days_after_the_month_is_complete(crew, smtp):
    make_service(crew.team, "Checkout API")
    for now in (
        datetime(2026, 4, 1, 0, 5, tzinfo=UTC),  # rollups of the last minutes may be missing
        datetime(2026, 4, 8, 0, 0, tzinfo=UTC),  # a week late: not sent any more
        datetime(2026, 3, 31, 23, 0, tzinfo=UTC),  # March is not over
    ):
        assert sla_mail.send_monthly_reports(now) == {"sent": 0, "skipped": 0, "failed": 0}
    assert smtp.messages == []
    assert sla_mail.send_monthly_reports(datetime(2026, 4, 7, 23, 0, tzinfo=UTC))["sent"] == 1


def test_teams_without_services_or_managers_get_no_mail(crew, smtp):
    make_service(crew.team, "Checkout API")
    crew.manager.email = ""
    crew.manager.save()
    # Payments has no manager with an address; Search (the outsider's) has no services.
    assert sla_mail.send_monthly_reports(APRIL_FIRST) == {"sent": 0, "skipped": 1, "failed": 0}
    assert smtp.messages == []
    assert not Event.objects.filter(kind="report.sla_sent").exists()


def test_a_refused_mail_is_not_recorded_and_is_sent_by_a_later_run(crew, smtp):
    make_service(crew.team, "Checkout API")
    with override_settings(EMAIL_PORT=free_port()):  # nothing listens there
        assert sla_mail.send_monthly_reports(APRIL_FIRST)["failed"] == 1
    assert not Event.objects.filter(kind="report.sla_sent").exists()
    assert sla_mail.send_monthly_reports(APRIL_FIRST.replace(hour=7))["sent"] == 1
    assert len(smtp.messages) == 1


def test_the_task_is_scheduled_hourly():
    [task] = [t for t in registered() if t.name == "incidents.sla_reports"]
    assert (task.func, task.minutes) == ("incidents.reports.sla_mail.send_monthly_reports", 60)
