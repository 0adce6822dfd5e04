"""One run of a check, without the database: observe, judge, retry once if asked.

The scheduler runs many of these concurrently on one event loop; ``run_now`` and
``test_config`` run one. Each observation is bounded by its timeout (plus a second for the kind
to report it precisely), so a hanging target costs its own slot and never holds others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from probes import kinds
from probes.checks.choices import ResultStatus
from probes.conditions import Condition, evaluate_all
from probes.kinds import http as http_kind
from probes.kinds.base import Observation, excerpt

# The summary of an alert and a result's error are bounded by this.
ERROR_LIMIT = 500


@dataclass
class RunOutcome:
    """What a run found: the result row's content, before it is stored."""

    status: str
    started_at: datetime
    latency_ms: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""  # the failure reason (an alert's summary)
    explanation: str = ""  # every failed condition with its resolved values, one per line
    excerpt: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == ResultStatus.DOWN


@dataclass(frozen=True)
class Plan:
    """What to run: a saved check's or an unsaved configuration's essentials."""

    kind: str
    config: dict[str, Any]
    conditions: Sequence[Condition]
    degraded_conditions: Sequence[Condition]
    timeout: float
    quick_retry: bool = False

    @classmethod
    def of(cls, check: Any) -> Plan:
        return cls(
            kind=check.kind,
            config=check.config,
            conditions=check.parsed_conditions,
            degraded_conditions=check.parsed_degraded_conditions,
            timeout=check.timeout,
            quick_retry=check.quick_retry,
        )


def judge(
    observation: Observation,
    conditions: Sequence[Condition],
    degraded_conditions: Sequence[Condition] = (),
) -> tuple[str, str, str]:
    """(status, error, explanation) of an observation under the conditions."""
    failed = [v.explanation for v in evaluate_all(conditions, observation.values) if not v]
    softer = [v.explanation for v in evaluate_all(degraded_conditions, observation.values) if not v]
    if not observation.reached:
        status = ResultStatus.DOWN
        error = observation.error or "the target was not reached"
    elif failed:
        status = ResultStatus.DOWN
        error = "failed: " + "; ".join(failed)
    elif softer:
        status = ResultStatus.DEGRADED
        error = "degraded: " + "; ".join(softer)
    else:
        status, error = ResultStatus.UP, ""
    return status, error[:ERROR_LIMIT], "\n".join(failed + softer)


async def observe_bounded(kind: str, config: dict[str, Any], timeout: float) -> Observation:
    """The kind's observation, cut off a second after its timeout if the kind overruns it (a
    timeout scope, not ``wait_for``'s extra task per run)."""
    try:
        async with asyncio.timeout(timeout + 1.0):
            return await kinds.get(kind).observe(config, timeout)
    except TimeoutError:
        return Observation(reached=False, error=f"timed out after {timeout:g} s (no answer)")


async def run_plan(plan: Plan, started_at: datetime | None = None) -> RunOutcome:
    """Observe and judge once, and once more at once after a failure when the plan says so."""
    started_at = started_at or timezone.now()
    outcome = await _run_once(plan, started_at)
    if outcome.failed and plan.quick_retry:
        first = outcome.error
        outcome = await _run_once(plan, started_at)
        outcome.details = {**outcome.details, "quick_retry": {"first_error": first}}
    return outcome


async def _run_once(plan: Plan, started_at: datetime) -> RunOutcome:
    clock = time.perf_counter()
    observation = await observe_bounded(plan.kind, plan.config, plan.timeout)
    wall_ms = (time.perf_counter() - clock) * 1000
    status, error, explanation = judge(observation, plan.conditions, plan.degraded_conditions)
    latency = observation.values.get("RESPONSE_TIME")
    if not isinstance(latency, int | float):
        latency = observation.timings.get("total", wall_ms)
    return RunOutcome(
        status=status,
        started_at=started_at,
        latency_ms=round(float(latency), 3),
        timings=dict(observation.timings),
        error=error,
        explanation=explanation,
        excerpt=excerpt(observation.excerpt),
        details=dict(observation.details),
    )


def run_sync(work: Callable[[], Awaitable[Any]]) -> Any:
    """Run coroutines on a fresh event loop and close the pooled HTTP clients it opened."""

    async def wrapped() -> Any:
        try:
            return await work()
        finally:
            await http_kind.close_clients()

    return asyncio.run(wrapped())
