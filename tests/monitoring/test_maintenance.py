"""Maintenance windows: one-off, recurring across midnight, in a time zone with DST."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from monitoring.models import Alert, MaintenanceWindow, Suppression
from monitoring.pipeline import AlertInput, process
from monitoring.suppression import (
    create_maintenance_window,
    delete_maintenance_window,
    reevaluate_suppressions,
    update_maintenance_window,
)
from tocsin.models import Event
from tocsin.services import ServiceError


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def recurring(service, **kw):
    return MaintenanceWindow(service=service, title="nightly", **kw)


def fire(service, now=None):
    item = AlertInput(labels={"alertname": "DiskFull"})
    return process(service, [item], source="test", now=now)[0]


def test_a_one_off_window(service):
    window = MaintenanceWindow(
        service=service,
        title="db upgrade",
        starts_at=utc(2025, 1, 1, 10),
        ends_at=utc(2025, 1, 1, 12),
    )
    assert not window.is_active(utc(2025, 1, 1, 9, 59))
    assert window.is_active(utc(2025, 1, 1, 10))
    assert not window.is_active(utc(2025, 1, 1, 12))


def test_a_recurring_window_across_midnight(service):
    # Fridays (4) 22:00 UTC for 4 hours: until Saturday 02:00.
    window = recurring(service, weekdays=[4], start_time=time(22), duration=timedelta(hours=4))
    friday = utc(2025, 1, 3)
    assert friday.weekday() == 4
    assert not window.is_active(friday + timedelta(hours=21, minutes=59))
    assert window.is_active(friday + timedelta(hours=22))
    assert window.is_active(friday + timedelta(days=1, hours=1, minutes=59))
    assert not window.is_active(friday + timedelta(days=1, hours=2))
    assert not window.is_active(friday + timedelta(days=1, hours=22, minutes=30))  # Saturday


def test_a_recurring_window_keeps_local_time_across_dst(service):
    # Sundays 01:00 Europe/Berlin for 3 hours. 2025-03-30 clocks jump 02:00 CET -> 03:00 CEST.
    window = recurring(
        service,
        weekdays=[6],
        start_time=time(1),
        duration=timedelta(hours=3),
        time_zone="Europe/Berlin",
    )
    # Winter (CET, UTC+1): 01:00 local is 00:00 UTC.
    assert not window.is_active(utc(2025, 3, 22, 23, 59))
    assert window.is_active(utc(2025, 3, 23, 0, 0))
    # The DST day: starts 00:00 UTC, lasts 3 elapsed hours (until 05:00 CEST = 03:00 UTC).
    assert window.is_active(utc(2025, 3, 30, 0, 0))
    assert window.is_active(utc(2025, 3, 30, 2, 59))
    assert not window.is_active(utc(2025, 3, 30, 3, 0))
    # Summer (CEST, UTC+2): 01:00 local is 23:00 UTC on Saturday.
    assert window.is_active(utc(2025, 4, 5, 23, 0))
    assert not window.is_active(utc(2025, 4, 5, 22, 59))
    assert not window.is_active(utc(2025, 4, 6, 2, 0))


def test_a_start_time_skipped_by_dst_still_opens_the_window(service):
    # 02:30 does not exist in Berlin on 2025-03-30; the window opens at 03:30 CEST (01:30 UTC).
    window = recurring(
        service,
        weekdays=[6],
        start_time=time(2, 30),
        duration=timedelta(hours=1),
        time_zone="Europe/Berlin",
    )
    assert window.is_active(utc(2025, 3, 30, 1, 30))
    assert not window.is_active(utc(2025, 3, 30, 1, 29))


def test_the_pipeline_stores_alerts_in_maintenance_as_suppressed(service, crew):
    now = utc(2030, 1, 1, 12)
    window = create_maintenance_window(
        service=service,
        title="upgrade",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        actor=crew.manager,
    )
    alert = fire(service, now=now).alert
    assert alert.suppression == Suppression.MAINTENANCE
    assert alert.suppressed_by == {"kind": "maintenance", "id": window.pk, "label": "upgrade"}
    assert Event.objects.get(kind="alert.firing").payload["suppression"] == "maintenance"


def test_maintenance_outranks_silences(service, crew):
    from monitoring.suppression import create_silence

    create_silence(team=crew.team, matchers="alertname=DiskFull", duration=timedelta(hours=1))
    create_maintenance_window(
        service=service,
        title="w",
        weekdays=list(range(7)),
        start_time=time(0),
        duration=timedelta(days=7),
    )
    assert fire(service).alert.suppression == Suppression.MAINTENANCE


def test_an_ended_window_unsuppresses_on_reevaluation(service, crew):
    now = utc(2030, 1, 1, 12)
    create_maintenance_window(
        service=service,
        title="upgrade",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
    )
    fire(service, now=now)
    reevaluate_suppressions(now + timedelta(minutes=30))
    assert Alert.objects.get().suppression == Suppression.MAINTENANCE
    reevaluate_suppressions(now + timedelta(hours=1))
    assert Alert.objects.get().suppression == ""
    event = Event.objects.get(kind="alert.unsuppressed")
    assert event.payload["previous"]["suppression"] == "maintenance"


def test_windows_of_other_services_do_not_apply(service, other_service, crew):
    create_maintenance_window(
        service=other_service,
        title="w",
        weekdays=list(range(7)),
        start_time=time(0),
        duration=timedelta(days=7),
    )
    assert fire(service).alert.suppression == ""


def test_changes_are_recorded(service, crew):
    window = create_maintenance_window(
        service=service,
        title="w",
        weekdays=[0],
        start_time=time(3),
        duration=timedelta(hours=1),
        time_zone="America/New_York",
        actor=crew.manager,
    )
    update_maintenance_window(window, title="weekly", actor=crew.manager)
    delete_maintenance_window(window, actor=crew.manager)
    assert list(
        Event.objects.exclude(kind__startswith="incident.")
        .order_by("id")
        .values_list("kind", flat=True)
    ) == [
        "maintenance.created",
        "maintenance.updated",
        "maintenance.deleted",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"weekdays": [7], "start_time": time(1), "duration": timedelta(hours=1)}, "weekdays"),
        ({"weekdays": [1], "duration": timedelta(hours=1)}, "start_time"),
        ({"weekdays": [1], "start_time": time(1)}, "duration"),
        ({"weekdays": [1], "start_time": time(1), "duration": timedelta(days=8)}, "duration"),
        (
            {
                "weekdays": [1],
                "start_time": time(1),
                "duration": timedelta(1),
                "time_zone": "Mars/X",
            },
            "time_zone",
        ),
        ({"starts_at": utc(2030, 1, 1)}, "ends_at"),
        ({"starts_at": utc(2030, 1, 2), "ends_at": utc(2030, 1, 1)}, "ends_at"),
        ({}, "starts_at"),
        ({"start_time": time(1), "duration": timedelta(hours=1)}, "weekdays"),
    ],
)
def test_bad_windows_are_refused(service, kwargs, field):
    with pytest.raises(ServiceError) as info:
        create_maintenance_window(service=service, title="w", **kwargs)
    assert info.value.field == field
    assert not MaintenanceWindow.objects.exists() and not Event.objects.exists()
