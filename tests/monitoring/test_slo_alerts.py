"""Multi-window, multi-burn-rate alerts: each window pair fires at the minute its long and
short burn rates both pass the factor, and resolves at the minute the short one drops back;
pages are critical alerts (P1 incidents), tickets warnings (P3), through the real pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incidents.lifecycle.models import Incident
from monitoring.models import Alert
from monitoring.slos import services
from monitoring.slos.alerts import PAIRS, burns
from monitoring.slos.evaluation import evaluate, evaluate_all
from monitoring.slos.windows import Window, length
from tests.monitoring.test_slo_support import (
    DOWN,
    UP,
    check,
    make_slo,
    runs,
    samples,
    series,
    service,
    target,
)

__all__ = ["check", "service", "target"]  # fixtures

T0 = datetime(2025, 6, 10, 3, 17, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
BASELINE = timedelta(days=3, minutes=10)


def test_the_factors_are_the_workbooks_for_30_days_and_scale_with_the_window():
    thirty = timedelta(days=30)
    assert [round(p.factor(thirty), 6) for p in PAIRS] == [14.4, 6, 3, 1]
    assert [p.severity for p in PAIRS] == ["critical", "critical", "warning", "warning"]
    week = length(Window.ROLLING_7D, "UTC", T0)
    assert [round(p.factor(week), 4) for p in PAIRS] == [3.36, 1.4, 0.7, 0.2333]
    february = length(Window.CALENDAR_MONTH, "UTC", datetime(2025, 2, 3, tzinfo=UTC))
    assert round(PAIRS[0].factor(february), 6) == 13.44


@pytest.fixture
def slow_burn(service):
    """1,000 requests a minute; for 420 minutes from T0, 1.1 % of them fail (after three
    days without a failure); a 30-day SLO of 99.9 % (factors 14.4, 6, 3 and 1)."""
    total = series(service, "requests")
    good = series(service, "good_requests")
    minutes = (BASELINE + timedelta(minutes=800)) // MINUTE
    start = T0 - BASELINE
    burning = range(BASELINE // MINUTE, BASELINE // MINUTE + 420)
    samples(total, start, [1000.0] * minutes)
    samples(good, start, [989.0 if m in burning else 1000.0 for m in range(minutes)])
    return make_slo(
        service,
        sli_kind="metric_ratio",
        sli_config={"good": "good_requests", "total": "requests"},
        objective="99.9",
        window="rolling_30d",
    )


def firing_at(slo, minute: int) -> list[str]:
    result = evaluate(slo, T0 + minute * MINUTE + timedelta(seconds=5))
    return result.firing


def test_each_slow_burn_pair_fires_and_resolves_at_its_minute(service, slow_burn):
    slo = slow_burn
    # 6 h at 1.1 %: above 0.6 % after 197 minutes (196 x 11 / 360,000 is just below).
    assert firing_at(slo, 196) == []
    assert firing_at(slo, 197) == ["6h/30m"]
    # 1 d above 0.3 % and 3 d above 0.1 % from minute 393.
    assert firing_at(slo, 392) == ["6h/30m"]
    assert firing_at(slo, 393) == ["6h/30m", "1d/2h", "3d/6h"]
    # The failures stop at minute 420: each pair resolves when its short window cools down:
    # 30 min after 14 good minutes, 2 h after 88, 6 h after 328.
    assert firing_at(slo, 433) == ["6h/30m", "1d/2h", "3d/6h"]
    assert firing_at(slo, 434) == ["1d/2h", "3d/6h"]
    assert firing_at(slo, 507) == ["1d/2h", "3d/6h"]
    assert firing_at(slo, 508) == ["3d/6h"]
    assert firing_at(slo, 747) == ["3d/6h"]
    assert firing_at(slo, 748) == []

    alerts = {a.labels["window"]: a for a in Alert.objects.filter(service=service)}
    assert set(alerts) == {"6h/30m", "1d/2h", "3d/6h"}
    assert all(a.status == "resolved" for a in alerts.values())
    assert alerts["6h/30m"].severity == "critical"
    assert alerts["1d/2h"].severity == alerts["3d/6h"].severity == "warning"
    assert alerts["6h/30m"].labels == {
        "alertname": "SLO error budget burn",
        "service": service.slug,
        "slo": slo.slug,
        "window": "6h/30m",
        "burn": "page",
    }
    priorities = sorted(Incident.objects.filter(service=service).values_list("priority", "urgency"))
    assert ("P1", "high") in priorities and ("P3", "low") in priorities


def test_the_burn_rates_behind_a_decision_are_shown(slow_burn):
    found = {b.pair.name: b for b in burns(slow_burn, T0 + 197 * MINUTE)}
    assert found["6h/30m"].long_rate == pytest.approx(197 * 11 / 360_000 / 0.001)
    assert found["6h/30m"].short_rate == pytest.approx(11.0)
    assert found["6h/30m"].firing and not found["1h/5m"].firing


def test_a_fast_burn_pages_within_a_minute_and_resolves_after_five(service, check):
    # Three days of one probe run a minute, all up; then one minute down.
    start = T0 - BASELINE
    runs(check, start, [(BASELINE // MINUTE, UP), (1, DOWN), (30, UP)])
    slo = make_slo(service, objective="99.9", window="rolling_30d")
    assert firing_at(slo, 0) == []
    # 1 h: 1/60 = 1.7 % > 1.44 %; 5 min: 20 %. 6 h: 0.28 % (< 0.6 %): only the page pair.
    assert firing_at(slo, 1) == ["1h/5m"]
    assert firing_at(slo, 5) == ["1h/5m"]
    assert firing_at(slo, 6) == []
    [alert] = Alert.objects.filter(service=service)
    assert (alert.severity, alert.status, alert.fingerprint) == (
        "critical",
        "resolved",
        f"slo:{slo.pk}:1h/5m",
    )
    [page] = Incident.objects.filter(service=service)
    assert (page.priority, page.urgency) == ("P1", "high")


def test_turning_alerting_off_resolves_what_fires(service, check):
    runs(check, T0 - BASELINE, [(BASELINE // MINUTE, UP), (1, DOWN)])
    slo = make_slo(service, objective="99.9", window="rolling_30d")
    assert firing_at(slo, 1) == ["1h/5m"]
    services.update_slo(slo, alerting=False)
    assert slo.alerted == []
    assert Alert.objects.get(service=service).status == "resolved"
    assert evaluate(slo, T0 + 2 * MINUTE).firing == []


def test_the_periodic_task_evaluates_each_slo_once_a_minute(service, check):
    runs(check, T0 - timedelta(hours=2), [(120, UP), (1, DOWN)])
    slo = make_slo(service, objective="99.9", window="rolling_30d")
    assert evaluate_all(T0 + MINUTE) == {"evaluated": 1, "firing": 4, "failed": 0}
    assert evaluate_all(T0 + MINUTE + timedelta(seconds=30)) == {
        "evaluated": 0,
        "firing": 0,
        "failed": 0,
    }
    slo.refresh_from_db()
    assert slo.computed_at == T0 + MINUTE
    assert slo.alerted == ["1h/5m", "6h/30m", "1d/2h", "3d/6h"]  # two hours of data only
    assert slo.attainment == pytest.approx(120 / 121)
    assert slo.burn_rate == pytest.approx((1 / 60) / 0.001)


def test_the_evaluation_is_a_task_of_every_minute_and_incidents_register_their_sli():
    from monitoring.slos import registry
    from tocsin.scheduling import registered

    [task] = [t for t in registered() if t.name == "monitoring.evaluate_slos"]
    assert (task.func, task.minutes) == ("monitoring.slos.evaluation.evaluate_all", 1)
    assert type(registry.get("incidents")).__module__ == "incidents.slos"
    assert set(registry.kinds()) == set(registry.BUILTIN)
