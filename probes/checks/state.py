"""The state machine of a check at one location (a ``Slot``), as methods the model inherits.

A run's status (up, degraded or down) is consumed with the check's thresholds:

- down after ``failure_threshold`` failures in a row, or, when "X of the last Y" is set, when X
  of the last Y runs since the last change of state failed;
- back up (or degraded) after ``recovery_threshold`` successes in a row;
- degraded at once when a run passed its conditions but failed a softer one (slow, …): degraded
  counts as a success for the thresholds and never alerts;
- unknown until the first verdict (a failure below the threshold leaves it unknown).

The memory of recent runs restarts at each change of state, so one more failure right after a
recovery does not trip "X of Y" again on the failures that caused the previous outage.
"""

from __future__ import annotations

from typing import Any

from probes.checks.choices import OUTCOME_MEMORY, CheckState, ResultStatus


class SlotStateMachine:
    """Mixed into ``Slot``; reads thresholds from ``self.probe`` (the Check)."""

    probe: Any
    state: str
    last_status: str
    consecutive_failures: int
    consecutive_successes: int
    recent: str

    def consume(self, status: str, probe: Any = None) -> bool:
        """Apply one run's status; True when the slot's state changed."""
        check = probe or self.probe
        failed = status == ResultStatus.DOWN
        self.last_status = status
        self.recent = (self.recent + ("f" if failed else "s"))[-OUTCOME_MEMORY:]
        if failed:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
        else:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
        passing = CheckState.DEGRADED if status == ResultStatus.DEGRADED else CheckState.UP
        before = self.state
        if before == CheckState.DOWN:
            if self.consecutive_successes >= check.recovery_threshold:
                self.state = passing
        elif self._trips(check):
            self.state = CheckState.DOWN
        elif not failed:
            self.state = passing
        changed = self.state != before
        if changed:
            self.recent = ""
        return changed

    def _trips(self, check: Any) -> bool:
        if check.window_failures and check.window_size:
            return self.recent[-check.window_size :].count("f") >= check.window_failures
        return self.consecutive_failures >= check.failure_threshold

    def reset(self) -> None:
        """Forget the verdicts (pausing, a changed configuration): unknown until the next run."""
        self.state = CheckState.UNKNOWN
        self.consecutive_failures = self.consecutive_successes = 0
        self.recent = ""
