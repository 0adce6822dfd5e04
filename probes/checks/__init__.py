"""Synthetic checks: a target probed on a schedule, its state, alerts, results and rollups.

- ``choices``: states, result statuses, rollup periods, limits and retention defaults
- ``models``: Check (configuration and aggregated state), Slot (its schedule and state at one
  location: the rows the scheduler claims), Result (one run, kept briefly), Rollup
- ``state``: the state machine of a slot (thresholds, "X of the last Y", degraded, recovery)
- ``runner``: one run of a check (observe, quick retry, conditions) without touching the database
- ``scheduler``: the due-work loop's claim-run-record of due slots, concurrently with asyncio
- ``inflight``: the worker's long-lived event loop for runs in flight (never waits on a target)
- ``alerts``: state → monitoring pipeline (raise/resolve), the only place that talks to it
- ``rollups``: minute/hour/day rollups with percentiles, and retention pruning
- ``services``: create/update, pause/resume, run now, test a configuration (what UI and API call)
- ``admin``: the Django admin
"""
