"""Multi-window, multi-burn-rate alerts (the Google SRE workbook, chapter 5, method 6).

Each pair of windows fires while the burn rate over both its long and its short window
exceeds its factor; the short window makes it resolve soon after the burn stops:

    page   (critical): 1 h and 5 min above 14.4, or 6 h and 30 min above 6
    ticket (warning):  1 d and 2 h above 3,      or 3 d and 6 h above 1

The factors are those of a 30-day window; other windows scale them the workbook's way, so
each pair still means "this share of the whole budget spent in the long window": 2 % in 1 h,
5 % in 6 h, 10 % in 1 d, 10 % in 3 d (factor = share x window / long window).

Alerts go through ``monitoring.pipeline`` on the SLO's service, one per pair
(``slo:<id>:<pair>``), critical for page pairs and warning for ticket pairs (the incident
defaults make those P1/high urgency and P3/low urgency).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from monitoring.models.choices import Severity
from monitoring.pipeline import AlertInput, raise_alert, resolve_alert
from monitoring.slos.budget import burn_rate
from monitoring.slos.compute import MINUTE, Counter, floor_to
from monitoring.slos.windows import length

SOURCE = "slo"


@dataclass(frozen=True)
class Pair:
    name: str
    long: timedelta
    short: timedelta
    share: float  # of the whole budget, spent within the long window
    action: str  # "page" or "ticket"

    @property
    def severity(self) -> str:
        return Severity.CRITICAL if self.action == "page" else Severity.WARNING

    def factor(self, window: timedelta) -> float:
        return self.share * (window / self.long)


PAIRS = (
    Pair("1h/5m", timedelta(hours=1), timedelta(minutes=5), 0.02, "page"),
    Pair("6h/30m", timedelta(hours=6), timedelta(minutes=30), 0.05, "page"),
    Pair("1d/2h", timedelta(days=1), timedelta(hours=2), 0.10, "ticket"),
    Pair("3d/6h", timedelta(days=3), timedelta(hours=6), 0.10, "ticket"),
)
BY_NAME = {pair.name: pair for pair in PAIRS}


@dataclass(frozen=True)
class Burn:
    pair: Pair
    factor: float
    long_rate: float
    short_rate: float

    @property
    def firing(self) -> bool:
        return self.long_rate > self.factor and self.short_rate > self.factor


def burns(slo: Any, now: datetime, counter: Counter | None = None) -> list[Burn]:
    """Each pair's factor and burn rates at ``now`` (windows end at ``now``'s minute)."""
    counter = counter or Counter(slo, now)
    upto = floor_to(now, MINUTE)
    window = length(slo.window, slo.time_zone, now)
    out = []
    for pair in PAIRS:
        long_rate = burn_rate(counter.lookback(upto, pair.long), slo.error_budget)
        short_rate = burn_rate(counter.lookback(upto, pair.short), slo.error_budget)
        out.append(Burn(pair, pair.factor(window), long_rate, short_rate))
    return out


def fingerprint(slo: Any, pair: Pair) -> str:
    return f"slo:{slo.pk}:{pair.name}"


def alert_input(slo: Any, burn: Burn) -> AlertInput:
    """Stable content (no live figures), so re-raising a firing alert is a cheap re-send."""
    pair = burn.pair
    speed = "fast" if pair.action == "page" else "slowly"
    link = f"{settings.TOCSIN_BASE_URL}/slos/{slo.pk}/"
    return AlertInput(
        labels={
            "alertname": "SLO error budget burn",
            "service": slo.service.slug,
            "slo": slo.slug,
            "window": pair.name,
            "burn": pair.action,
        },
        severity=pair.severity,
        summary=(
            f"{slo.name}: error budget burning {speed} "
            f"({pair.name} burn rate above {burn.factor:.3g})"
        )[:500],
        description=(
            f"The burn rate over both the last {_words(pair.long)} and the last "
            f"{_words(pair.short)} exceeds {burn.factor:.3g}: at this pace "
            f"{pair.share:.0%} of the budget of the SLO “{slo.name}” "
            f"({slo.objective}%) goes in {_words(pair.long)}."
        ),
        details={"slo": slo.name, "objective": str(slo.objective), "window": pair.name},
        links=[{"href": link, "text": "SLO"}],
        fingerprint=fingerprint(slo, pair),
    )


def _words(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"


def sync(slo: Any, found: list[Burn] | None) -> list[str]:
    """Raise the pairs that fire, resolve those that stopped; the pairs firing now. ``found``
    None (alerting off) resolves everything."""
    firing = [b for b in (found or []) if b.firing]
    names = {b.pair.name for b in firing}
    for name in slo.alerted or []:
        if name not in names and name in BY_NAME:
            resolve_alert(slo.service, fingerprint(slo, BY_NAME[name]), source=SOURCE)
    for burn in firing:
        raise_alert(slo.service, alert_input(slo, burn), source=SOURCE)
    return sorted(names, key=lambda n: [p.name for p in PAIRS].index(n))
