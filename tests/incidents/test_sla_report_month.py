"""The SLA report's figures against a month computed by hand: March 2026 in Europe/Berlin.

The month has a DST change (29 March, 02:00 CET → 03:00 CEST), so it lasts 743 hours:
Sun 1 March 00:00 CET = 2026-02-28 23:00Z to Wed 1 April 00:00 CEST = 2026-03-31 22:00Z,
31 x 1,440 - 60 = 44,580 minutes. All times below are UTC unless marked CET/CEST.

The probe history is built through the probes app's real code: one ``Result`` row per run,
rolled up with ``rollups.rollup`` (minutes, hours, then minutes packed into day rows), and the
report reads it back through ``monitoring.availability.source("probe")``.

Service "Checkout API" has two checks running once a minute (second 10) at "fra": Front (F)
from 2026-02-28 22:00 to 2026-03-31 23:00, API health (A) on 6, 10 and 15 March only (whole
UTC days; a check that did not run leaves its minutes unmeasured), all runs up except:

- Front (F) down   2026-03-10 13:00-13:45 (45 min)            [14:00-14:45 CET]
- API (A) down     2026-03-10 13:30-14:00 (30 min)            overlaps F: union 13:00-14:00
- F down           2026-03-17 04:50-05:10 (20 min)            [05:50-06:10 CET], half in M1
- F down           2026-03-20 20:00-20:40 (40 min)            all inside M2
- F down           2026-03-29 00:30-01:15 (45 min)            [01:30 CET → 03:15 CEST]
- F down           2026-03-31 22:00-23:00 (60 min)            April in Berlin (March in UTC)
- A degraded       2026-03-15 10:00-10:30 (30 min)            slow but reached: up
- F, 2026-03-12 08:00: fra down + ams up                      a tie: not down
- F, 2026-03-12 08:01: fra down + ams down + nyc up           most runs down: down (1 min)
- neither ran      2026-03-04 23:00-2026-03-05 05:00 (360)    one "unknown" result (gap)
- F did not run    2026-03-06 09:00-10:00 (60 min)            A ran: measured, up

Maintenance of Checkout API:
- M1 "Patch Tuesday": Tuesdays 06:00 Europe/Berlin, 30 min → 3, 10, 17, 24 March at
  05:00Z (CET) and 31 March at 04:00Z (CEST): 5 x 30 = 150 min
- M2 "Database upgrade": 2026-03-20 20:00-21:00 = 60 min
- M3 "Cut-over": 2026-02-28 22:30-23:30, inside the month from 23:00: 30 min
  Maintenance: 150 + 60 + 30 = 240 minutes (no overlap with each other or the gap).
  (A window of another service, over 10 March 13:00-14:00, counts for nothing here.)

By hand:
  unmeasured  = 360 (the gap; F's own gap is measured by A)
  measured    = 44,580 - 240 - 360 = 43,980
  downtime    = 60 (F or A on 10 March) + 10 (17 March 04:50-05:00, before M1)
                + 45 (29 March, 45 real minutes over the DST jump) + 1 (12 March 08:01) = 116
  down in maintenance = 10 (17 March 05:00-05:10) + 40 (20 March) = 50
  availability = (43,980 - 116) / 43,980 = 43,864 / 43,980 = 99.73624375 % → "99.7362"
  allowed at 99.9 % = 43,980 x 0.1 % = 43.98 minutes → target missed

Incidents of Checkout API:
  I1 created 10 March 13:02, acknowledged +5, resolved +58 (14:00)
  I2 created 29 March 00:32, acknowledged +8, resolved +43 (01:15)
  I3 created 28 Feb 22:30 (February in Berlin), resolved 23:30: listed, 30 min in the month,
     not in MTTA/MTTR (created before the month)
  I4 created 31 March 21:30, acknowledged +15, still open: 30 min in the month (to 22:00)
  Not listed: one merged into I1, one created 31 March 22:05 (April in Berlin), one resolved
  before the month, Ledger's and the other team's.
  MTTA = (5 + 8 + 15) / 3 = 9.33 min = 560 s;  MTTR = (58 + 43) / 2 = 50.5 min = 3,030 s
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest

from incidents.models import Incident
from incidents.reports import sla
from monitoring.models import MaintenanceWindow, Service
from probes.checks import rollups, services
from probes.checks.models import Check, Result, ResultStatus
from tests.incidents.report_support import _incident

pytestmark = pytest.mark.django_db

M = timedelta(minutes=1)
BERLIN = "Europe/Berlin"
MARCH = date(2026, 3, 1)
RUN_FROM = datetime(2026, 2, 28, 22, 0, tzinfo=UTC)
RUN_UNTIL = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
AFTER = datetime(2026, 4, 2, 6, 0, tzinfo=UTC)  # "now" when the report is read


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def minutes(start: datetime, end: datetime) -> set[datetime]:
    return {start + i * M for i in range(int((end - start) / M))}


FRONT_DOWN = (
    minutes(at(10, 13), at(10, 13, 45))
    | minutes(at(17, 4, 50), at(17, 5, 10))
    | minutes(at(20, 20), at(20, 20, 40))
    | minutes(at(29, 0, 30), at(29, 1, 15))
    | minutes(at(31, 22), at(31, 23))
    | {at(12, 8), at(12, 8, 1)}  # fra; the other locations are added below
)
API_DOWN = minutes(at(10, 13, 30), at(10, 14))
API_DEGRADED = minutes(at(15, 10), at(15, 10, 30))
NO_RUNS = minutes(at(4, 23), at(5, 5))
FRONT_NO_RUNS = NO_RUNS | minutes(at(6, 9), at(6, 10))


@dataclass
class Month:
    checkout: Service
    ledger: Service
    front: Check
    api: Check
    incidents: dict[str, Incident]


def _check(service: Service, name: str) -> Check:
    return services.create_check(
        service=service,
        now=RUN_FROM,
        name=name,
        kind="http",
        config={"url": "http://127.0.0.1:9/"},
        interval=60,
        timeout=2.0,
    )


def _runs(
    check: Check, down: set, degraded: set, skipped: set, days: set | None = None
) -> list[Result]:
    rows = []
    minute = RUN_FROM
    while minute < RUN_UNTIL:
        if minute not in skipped and (days is None or (minute.day in days and minute.month == 3)):
            status = (
                ResultStatus.DOWN
                if minute in down
                else ResultStatus.DEGRADED
                if minute in degraded
                else ResultStatus.UP
            )
            moment = minute + timedelta(seconds=10)
            rows.append(
                Result(
                    probe=check,
                    location="fra",
                    slot_at=moment,
                    started_at=moment,
                    status=status,
                    latency_ms=40.0,
                )
            )
        minute += M
    return rows


def _extra(check: Check, minute: datetime, location: str, status: str) -> Result:
    moment = minute + timedelta(seconds=20)
    return Result(probe=check, location=location, slot_at=moment, started_at=moment, status=status)


def build_month(crew) -> Month:
    checkout = Service.objects.create(team=crew.team, name="Checkout API")
    ledger = Service.objects.create(team=crew.team, name="Ledger")
    search = Service.objects.create(team=crew.other_team, name="Search")
    front, api = _check(checkout, "Front"), _check(checkout, "API health")
    rows = _runs(front, FRONT_DOWN, set(), FRONT_NO_RUNS)
    rows += _runs(api, API_DOWN, API_DEGRADED, NO_RUNS, days={6, 10, 15})
    rows += [
        _extra(front, at(12, 8), "ams", ResultStatus.UP),
        _extra(front, at(12, 8, 1), "ams", ResultStatus.DOWN),
        _extra(front, at(12, 8, 1), "nyc", ResultStatus.UP),
    ]
    gap = at(4, 23) + timedelta(seconds=10)
    rows.append(
        Result(probe=front, slot_at=gap, started_at=gap, status=ResultStatus.UNKNOWN, slots=360)
    )
    Result.objects.bulk_create(rows, batch_size=5000)
    rollups.rollup(RUN_UNTIL + 2 * M, lookback=RUN_UNTIL - RUN_FROM + 3 * M)
    rollups.rollup(RUN_UNTIL + timedelta(hours=2))  # every minute packed into its day row

    MaintenanceWindow.objects.create(
        service=checkout,
        title="Patch Tuesday",
        weekdays=[1],
        start_time=time(6, 0),
        duration=timedelta(minutes=30),
        time_zone=BERLIN,
    )
    MaintenanceWindow.objects.create(
        service=checkout, title="Database upgrade", starts_at=at(20, 20), ends_at=at(20, 21)
    )
    MaintenanceWindow.objects.create(
        service=checkout,
        title="Cut-over",
        starts_at=at(28, 22, 30, month=2),
        ends_at=at(28, 23, 30, month=2),
    )
    MaintenanceWindow.objects.create(
        service=ledger, title="Ledger work", starts_at=at(10, 13), ends_at=at(10, 14)
    )

    i1 = _incident(checkout, at(10, 13, 2), ack=5, resolved=58)
    found = {
        "I1": i1,
        "I2": _incident(checkout, at(29, 0, 32), ack=8, resolved=43),
        "I3": _incident(checkout, at(28, 22, 30, month=2), ack=3, resolved=60),
        "I4": _incident(checkout, at(31, 21, 30), ack=15),
    }
    _incident(checkout, at(10, 13, 3), ack=1, resolved=2, merged_into=i1, group_key="merged")
    _incident(checkout, at(31, 22, 5), ack=1, resolved=10)
    _incident(checkout, at(27, 10, month=2), ack=1, resolved=60)
    _incident(ledger, at(11, 9), ack=2, resolved=4)
    _incident(search, at(10, 13), ack=1, resolved=5)
    return Month(checkout=checkout, ledger=ledger, front=front, api=api, incidents=found)


def report(crew, **options):
    options.setdefault("time_zone", BERLIN)
    return sla.build(crew.team, MARCH, now=AFTER, **options)


def test_march_2026_in_berlin_has_743_hours():
    start, end = sla.month_bounds(MARCH, sla.ZoneInfo(BERLIN))
    assert (start, end) == (at(28, 23, month=2), at(31, 22))
    assert (end - start) / M == 44_580


def test_the_fixture_month_matches_the_hand_computation(crew):
    """One month built once (a month of runs takes a while to roll up), read many ways; the
    pruning step comes last as it changes the stored history."""
    month = build_month(crew)
    _availability_downtime_and_maintenance_match_the_hand_computation(crew, month)
    _maintenance_occurrences_are_listed_in_utc_keeping_local_time_across_dst(crew, month)
    _incidents_durations_and_mtta_mttr_match_the_hand_computation(crew, month)
    _a_service_without_checks_is_all_unmeasured(crew, month)
    _the_month_follows_the_report_time_zone(crew, month)
    _a_given_target_replaces_the_default(crew, month)
    _hours_whose_minutes_are_pruned_are_estimated_from_hourly_rollups(crew, month)


def _availability_downtime_and_maintenance_match_the_hand_computation(crew, month):
    result = report(crew)
    assert result.complete and (result.start, result.end) == (at(28, 23, month=2), at(31, 22))
    checkout = result.services[0]
    assert checkout.service == month.checkout
    assert checkout.checks == ["API health", "Front"]
    t = checkout.tally
    assert t.minutes == 44_580
    assert t.maintenance == 240
    assert t.unmeasured == 360
    assert t.measured == 43_980
    assert t.down == 116
    assert t.down_in_maintenance == 50
    assert t.estimated == 0
    assert t.up == 43_864
    assert checkout.availability == pytest.approx(100 * 43_864 / 43_980)
    assert sla.percent(checkout.availability) == "99.7362"
    assert checkout.target == 99.9 and checkout.met is False
    assert checkout.allowed_downtime == pytest.approx(43.98)


def _maintenance_occurrences_are_listed_in_utc_keeping_local_time_across_dst(crew, month):
    checkout = report(crew).services[0]
    listed = [(o.title, o.starts_at, o.ends_at, o.minutes) for o in checkout.maintenance]
    assert listed == [
        ("Cut-over", at(28, 22, 30, month=2), at(28, 23, 30, month=2), 30),
        ("Patch Tuesday", at(3, 5), at(3, 5, 30), 30),
        ("Patch Tuesday", at(10, 5), at(10, 5, 30), 30),
        ("Patch Tuesday", at(17, 5), at(17, 5, 30), 30),
        ("Database upgrade", at(20, 20), at(20, 21), 60),
        ("Patch Tuesday", at(24, 5), at(24, 5, 30), 30),
        ("Patch Tuesday", at(31, 4), at(31, 4, 30), 30),  # 06:00 CEST
    ]
    assert sum(o.minutes for o in checkout.maintenance) == checkout.tally.maintenance == 240


def _incidents_durations_and_mtta_mttr_match_the_hand_computation(crew, month):
    checkout = report(crew).services[0]
    i = month.incidents
    lines = [(line.id, line.duration_minutes, line.in_month_minutes) for line in checkout.incidents]
    assert lines == [
        (i["I3"].pk, 60.0, 30.0),
        (i["I1"].pk, 58.0, 58.0),
        (i["I2"].pk, 43.0, 43.0),
        (i["I4"].pk, None, 30.0),
    ]
    assert [line.before_month for line in checkout.incidents] == [True, False, False, False]
    f = checkout.figures
    assert (f.incidents, f.acknowledged, f.resolved) == (3, 3, 2)
    assert f.mtta_seconds == 560.0  # (5 + 8 + 15) min / 3
    assert f.mttr_seconds == 3030.0  # (58 + 43) min / 2


def _a_service_without_checks_is_all_unmeasured(crew, month):
    ledger = report(crew).services[1]
    assert ledger.service == month.ledger and ledger.checks == []
    assert (ledger.tally.measured, ledger.tally.unmeasured) == (0, 44_580 - 60)
    assert ledger.tally.maintenance == 60
    assert ledger.availability is None and ledger.met is None
    assert (ledger.figures.incidents, ledger.figures.mttr_seconds) == (1, 240.0)


def _the_month_follows_the_report_time_zone(crew, month):
    """In UTC, March is 44,640 minutes: the cut-over window is February, the 60 minutes down
    on 31 March 22:00-23:00 are March, and so is the hour after the runs stopped (unmeasured)."""
    t = report(crew, time_zone="UTC").services[0].tally
    assert t.minutes == 44_640
    assert t.maintenance == 210  # 5 x 30 + 60
    assert t.unmeasured == 360 + 60
    assert t.down == 116 + 60
    assert t.measured == 44_640 - 210 - 420


def _a_given_target_replaces_the_default(crew, month):
    checkout = report(crew, target=99.5).services[0]
    assert checkout.target == 99.5 and checkout.met is True
    assert checkout.allowed_downtime == pytest.approx(219.9)


def _hours_whose_minutes_are_pruned_are_estimated_from_hourly_rollups(crew, month):
    """Minutes are kept 14 days: pruned on 2 April, days before 19 March keep only hours.

    Their measured minutes stay 43,980 and 25,500 of them are estimated (28 Feb 23:00 to
    19 March 00:00 is 433 h = 25,980 min, less 120 of maintenance and the 360 unmeasured).
    Downtime there is the hour's free minutes x the largest share of down runs of a check:
    10 March 13:00: max(45/60, 30/60) x 60 = 45; 17 March 04:00: 10/60 x 60 = 10; 17 March
    05:00 (30 min free after M1): 10/60 x 30 = 5; 12 March 08:00: 3 down of 63 runs x 60 =
    2.86 → 3. With the 45 exact minutes of 29 March: 45 + 10 + 5 + 3 + 45 = 108."""
    rollups.prune(AFTER)
    t = report(crew).services[0].tally
    assert (t.measured, t.unmeasured, t.maintenance) == (43_980, 360, 240)
    assert t.estimated == 25_500
    assert t.down == 108
