"""Error budgets: attainment, budget remaining, burn rates, time to exhaustion, burn-down.

- **Attainment**: good / total over the window so far (no data: none yet).
- **Budget**: the share of the window's events (occurrences) or slices (time slices) that may
  be bad, ``1 - objective``. Remaining, occurrences: ``1 - (bad / total) / (1 - objective)``;
  time slices: ``1 - bad slices / (1 - objective) x slices in the whole window`` (minutes of
  downtime against the minutes the window allows). Both start at exactly 100 % when a
  calendar window starts, whatever happened the minute before, and go below 0 when overspent.
- **Burn rate** over a lookback: the bad share there divided by ``1 - objective``; 1 spends
  the budget exactly over the window, 14.4 spends 2 % of a 30-day budget in an hour.
- **Time to exhaustion**: the remaining budget at the last hour's burn rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitoring.slos.compute import DAY, HOUR, MINUTE, Counter, floor_to
from monitoring.slos.registry import Tally
from monitoring.slos.windows import Budgeting, bounds

# The burn rate shown in lists and used for the exhaustion forecast.
CURRENT_BURN = timedelta(hours=1)
# Budget remaining below this share shows as "at risk" (and above 0).
AT_RISK = 0.25


def burn_rate(tally: Tally, error_budget: float) -> float:
    if tally.total <= 0 or error_budget <= 0:
        return 0.0
    return (tally.bad / tally.total) / error_budget


@dataclass
class Figures:
    start: datetime
    end: datetime
    now: datetime
    tally: Tally
    attainment: float | None
    budget_remaining: float
    burn_rate: float
    time_to_exhaustion: timedelta | None
    # (moment, budget remaining then) from the window's start: the burn-down chart.
    burn_down: list[tuple[datetime, float]] = field(default_factory=list)

    @property
    def exhausted_at(self) -> datetime | None:
        if self.time_to_exhaustion is None:
            return None
        return self.now + self.time_to_exhaustion

    @property
    def status(self) -> str:
        return status_of(self.budget_remaining, self.tally.total > 0)


def status_of(remaining: float | None, measured: bool = True) -> str:
    """ "no_data", "ok", "at_risk" or "exhausted": colour and words on the pages."""
    if remaining is None or not measured:
        return "no_data"
    if remaining <= 0:
        return "exhausted"
    return "at_risk" if remaining < AT_RISK else "ok"


def remaining(slo: Any, tally: Tally, start: datetime, end: datetime) -> float:
    """The share of the error budget left (below 0: overspent). A zero budget (an objective
    stored as 100 %, which every writer refuses, but an older row may hold) is guarded, not
    divided by: nothing may fail, so it is whole until a bad event, then exhausted."""
    budget = slo.error_budget
    if budget <= 0:
        return 0.0 if tally.bad > 0 else 1.0
    if slo.budgeting == Budgeting.TIMESLICES:
        allowed = budget * ((end - start) / timedelta(minutes=slo.timeslice_minutes or 1))
        return 1.0 - tally.bad / allowed if allowed > 0 else 1.0
    if tally.total <= 0:
        return 1.0
    return 1.0 - (tally.bad / tally.total) / budget


def figures(
    slo: Any, now: datetime, *, counter: Counter | None = None, chart: bool = False
) -> Figures:
    """The SLO's window as it stands at ``now`` (its current calendar period, or the last N
    days); with ``chart``, the burn-down points too (daily, hourly for windows of a week)."""
    counter = counter or Counter(slo, now)
    start, end = bounds(slo.window, slo.time_zone, now)
    upto = floor_to(now, MINUTE)
    tally = counter.range(start, upto)
    left = remaining(slo, tally, start, end)
    burn = burn_rate(counter.lookback(upto, CURRENT_BURN), slo.error_budget)
    to_exhaustion = None
    if left <= 0:
        to_exhaustion = timedelta(0)
    elif burn > 0:
        to_exhaustion = (end - start) * left / burn
    out = Figures(
        start=start,
        end=end,
        now=upto,
        tally=tally,
        attainment=tally.good / tally.total if tally.total > 0 else None,
        budget_remaining=left,
        burn_rate=burn,
        time_to_exhaustion=to_exhaustion,
    )
    if chart:
        step = HOUR if end - start <= timedelta(days=7) else DAY
        out.burn_down = [
            (moment, remaining(slo, running, start, end))
            for moment, running in counter.cumulative(start, upto, step)
        ]
    return out


def sparkline(
    slo: Any, now: datetime, counter: Counter | None = None, points: int = 30
) -> list[float]:
    """Budget remaining at up to ``points`` moments over the window (days), for lists."""
    counter = counter or Counter(slo, now)
    start, end = bounds(slo.window, slo.time_zone, now)
    chart = counter.cumulative(start, floor_to(now, MINUTE), DAY)
    values = [round(remaining(slo, tally, start, end), 5) for _, tally in chart]
    return values[-points:]
