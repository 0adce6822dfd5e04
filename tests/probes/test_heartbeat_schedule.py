"""Heartbeat schedules: cron in the heartbeat's time zone across real DST changes, validation,
durations, and the lines people paste (curl, crontab)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from monitoring.models import Alert, AlertStatus, Service
from probes.heartbeats import evaluation, schedule, services, snippets
from probes.heartbeats.models import Heartbeat
from probes.heartbeats.services import PingData


@pytest.fixture
def service(crew) -> Service:
    return Service.objects.create(team=crew.team, name="Nightly jobs")


def succeed(heartbeat: Heartbeat, at: datetime) -> None:
    with transaction.atomic():
        services.record_ping(
            services.lock_by_uuid(heartbeat.uuid), PingData(kind="success"), now=at
        )
    heartbeat.refresh_from_db()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- cron across DST ---
def test_new_york_spring_forward_expects_9_am_local_one_hour_earlier_in_utc(service):
    # 2025-03-09: clocks go from 02:00 EST to 03:00 EDT. 09:00 is 14:00 UTC before, 13:00 after.
    heartbeat = Heartbeat.objects.create(
        service=service, name="Report", cron="0 9 * * *", timezone="America/New_York", grace=900
    )
    succeed(heartbeat, utc(2025, 3, 8, 14, 0, 5))

    assert heartbeat.expected_at == utc(2025, 3, 9, 13, 0)
    assert heartbeat.next_due_at == utc(2025, 3, 9, 13, 15)
    assert evaluation.run_due(utc(2025, 3, 9, 13, 14, 59)) == 0
    assert evaluation.run_due(utc(2025, 3, 9, 13, 15)) == 1
    missing = Alert.objects.get(service=service)
    assert missing.status == AlertStatus.FIRING
    assert "expected by 2025-03-09 09:00 EDT" in missing.summary


def test_berlin_skipped_hour_runs_right_after_the_gap(service):
    # 2025-03-30 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that night; Debian's cron
    # (and cronsim) runs the job at 03:00 CEST, i.e. 01:00 UTC.
    heartbeat = Heartbeat.objects.create(
        service=service, name="Vacuum", cron="30 2 * * *", timezone="Europe/Berlin", grace=600
    )
    succeed(heartbeat, utc(2025, 3, 29, 1, 30, 10))  # 02:30:10 CET

    assert heartbeat.expected_at == utc(2025, 3, 30, 1, 0)
    succeed(heartbeat, utc(2025, 3, 30, 1, 0, 10))
    assert heartbeat.expected_at == utc(2025, 3, 31, 0, 30)  # 02:30 CEST


def test_berlin_repeated_hour_runs_once(service):
    # 2025-10-26 03:00 CEST falls back to 02:00 CET: 02:30 happens twice; the job runs once,
    # at the first (00:30 UTC), and the next day at 02:30 CET (01:30 UTC), 25 hours later.
    heartbeat = Heartbeat.objects.create(
        service=service, name="Vacuum", cron="30 2 * * *", timezone="Europe/Berlin", grace=600
    )
    succeed(heartbeat, utc(2025, 10, 25, 0, 30, 10))

    assert heartbeat.expected_at == utc(2025, 10, 26, 0, 30)
    succeed(heartbeat, utc(2025, 10, 26, 0, 30, 10))
    assert heartbeat.expected_at == utc(2025, 10, 27, 1, 30)
    assert evaluation.run_due(utc(2025, 10, 26, 1, 40)) == 0  # the repeated 02:30 is no run


def test_a_period_is_plain_elapsed_time_across_dst(service):
    heartbeat = Heartbeat.objects.create(
        service=service, name="Sync", period=86400, timezone="Europe/Berlin", grace=60
    )
    succeed(heartbeat, utc(2025, 3, 29, 12, 0))

    assert heartbeat.expected_at == utc(2025, 3, 30, 12, 0)


# -- validation ---
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 0 * *"}, "cron"),
        ({"cron": "0 0 0 * * *"}, "cron"),  # six fields: seconds are not a crontab thing
        ({"cron": "0 0 30 2 *"}, "cron"),  # never fires
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"period": None}, "period"),
        ({"min_runtime": 600, "max_runtime": 60}, "min_runtime"),
        # A year at most (the admin refused nothing, and a ping then failed with a 500).
        ({"period": 10**9}, "period"),
        ({"grace": 10**9}, "grace"),
        ({"max_runtime": 10**9}, "max_runtime"),
        ({"too_often": 10**9}, "too_often"),
        ({"min_runtime": 8 * 86400}, "min_runtime"),
    ],
)
def test_a_bad_schedule_is_refused_with_the_field_named(service, fields, field):
    heartbeat = Heartbeat(service=service, name="Job", **fields)

    with pytest.raises(ValidationError) as raised:
        heartbeat.full_clean()

    assert field in raised.value.message_dict


def test_a_good_cron_schedule_validates(service):
    Heartbeat(service=service, name="Job", slug="job", cron="*/5 * * * 1-5").full_clean()


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)]
)
def test_durations_in_urls(text, seconds):
    assert schedule.parse_duration(text) == seconds


def test_a_duration_without_a_number_is_refused():
    with pytest.raises(ValueError):
        schedule.parse_duration("soon")


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5 s"), (400, "6 min 40 s"), (7500, "2 h 5 min"), (3 * 86400, "3 d")]
)
def test_durations_for_people(seconds, text):
    assert schedule.humanize(seconds) == text


# -- snippets ---
def test_the_curl_line_pings_the_heartbeat_url(service, settings):
    settings.TOCSIN_BASE_URL = "https://tocsin.example.org"
    heartbeat = Heartbeat.objects.create(service=service, name="Backup")

    assert snippets.curl_line(heartbeat) == (
        f"curl -fsS -m 10 --retry 5 -o /dev/null https://tocsin.example.org/ping/{heartbeat.uuid}"
    )


def test_the_crontab_line_reports_start_and_exit_status_in_the_zone(service, settings):
    settings.TOCSIN_BASE_URL = "https://tocsin.example.org"
    heartbeat = Heartbeat.objects.create(
        service=service, name="Backup", cron="30 2 * * *", timezone="Europe/Berlin"
    )
    url = f"https://tocsin.example.org/ping/{heartbeat.uuid}"

    line = snippets.crontab_line(heartbeat, "/usr/local/bin/backup")

    assert line == (
        "CRON_TZ=Europe/Berlin\n"
        f"30 2 * * * curl -fsS -m 10 --retry 5 -o /dev/null {url}/start; "
        f"/usr/local/bin/backup; curl -fsS -m 10 --retry 5 -o /dev/null {url}/$?"
    )


@pytest.mark.parametrize(
    ("period", "expression"),
    [(300, "*/5 * * * *"), (3600, "0 * * * *"), (6 * 3600, "0 */6 * * *"), (86400, "0 0 * * *")],
)
def test_a_period_becomes_the_nearest_crontab_schedule(service, period, expression):
    heartbeat = Heartbeat(service=service, name="Job", period=period)

    assert snippets.cron_expression(heartbeat) == expression


def test_expectations_are_timezone_aware_utc(service):
    heartbeat = Heartbeat.objects.create(
        service=service, name="Job", cron="0 6 * * *", timezone="Asia/Kolkata", grace=0
    )
    succeed(heartbeat, utc(2025, 1, 1, 0, 0))

    assert heartbeat.expected_at == utc(2025, 1, 1, 0, 30)  # 06:00 IST is 00:30 UTC
    assert heartbeat.expected_at.utcoffset() == timedelta(0)
