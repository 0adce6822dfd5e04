"""Group commit for ingest: concurrent requests of one web process share a pipeline call.

Under a storm, senders post many small requests at once (Prometheus one per evaluation group,
scripts one alert each). Processed one by one, each pays the pipeline's fixed cost — its reads,
inserts and commit, a dozen round trips to the database — for one alert. Here the requests
that arrive while a batch is being processed wait together and go through the pipeline as the
next batch: one transaction, the same statements as one request's batch. The busier the
server, the larger the batches, so the cost per alert falls as the load rises; an idle server
processes a lone request at once.

What a sender is told does not change: each request is answered after the transaction holding
its alerts committed, with its own outcomes, as if it had been processed alone. A batch never
holds two requests with the same fingerprint (the second waits for the next batch), so each
outcome is the one it would have had; and if a merged batch fails, its requests are processed
again one by one, so one request's failure stays its own (a batch is all or nothing per
request, never across requests).

The synchronous view (WSGI, tests) runs a lone request through the same ``run``; under ASGI
:class:`Batcher` gathers the requests on the event loop and runs each batch in a thread of its
own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import close_old_connections

from monitoring.ingest import key_cache
from monitoring.ingest import stats as ingest_stats
from monitoring.models import Integration
from monitoring.pipeline import AlertInput, Outcome, process

logger = logging.getLogger(__name__)

# A batch stops growing at this many alerts (a bound on one transaction's length); the rest
# waits for the next one.
MAX_BATCH_ALERTS = 2_000


@dataclass(eq=False)
class Submission:
    """One accepted request's alerts, waiting for (then holding) their outcomes."""

    integration: Integration
    kind: str
    items: list[AlertInput]
    started: float
    outcomes: list[Outcome] = field(default_factory=list)
    error: BaseException | None = None

    def fingerprints(self) -> list[str]:
        """Distinct, in the order the pipeline reports them (the last word about one wins)."""
        return list(dict.fromkeys(item.get_fingerprint() for item in self.items))


def run(submissions: list[Submission]) -> None:
    """Process ``submissions`` — one pipeline call per integration — and give each its
    outcomes (or its error). Never raises: an error belongs to the requests it hit."""
    by_integration: dict[int, list[Submission]] = {}
    for submission in submissions:
        by_integration.setdefault(submission.integration.pk, []).append(submission)
    for group in by_integration.values():
        try:
            _process(group)
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                continue
            for submission in group:  # alone, so one request's failure stays its own
                try:
                    _process([submission])
                except Exception as alone:
                    submission.error = alone
    for submission in submissions:
        if submission.error is None:
            _observe(submission)
    ingest_stats.observe_batch(len(submissions))


def _process(group: list[Submission]) -> None:
    integration = group[0].integration
    received = integration.last_received_at
    items = [item for submission in group for item in submission.items]
    outcomes = process(integration.service, items, source=group[0].kind, integration=integration)
    if integration.last_received_at != received:  # written once a minute: remember it too
        key_cache.remember(integration)
    by_fingerprint = {outcome.fingerprint: outcome for outcome in outcomes}
    for submission in group:
        submission.outcomes = [by_fingerprint[fp] for fp in submission.fingerprints()]


def _observe(submission: Submission) -> None:
    tally = Counter(outcome.result for outcome in submission.outcomes)
    seconds: float | None = time.perf_counter() - submission.started
    if not tally:
        ingest_stats.observe(submission.kind, "empty", seconds)  # a request with no alerts
    for result, count in tally.items():
        ingest_stats.observe(submission.kind, result, seconds, count=count)
        seconds = None


def take(waiting: list[Submission]) -> tuple[list[Submission], list[Submission]]:
    """The next batch from ``waiting`` (in arrival order) and what stays waiting: a request
    sharing a fingerprint with one taken or left (it must follow that one), or past the size
    bound, waits for the next batch."""
    batch: list[Submission] = []
    left: list[Submission] = []
    taken: set[tuple[int, str]] = set()
    held: set[tuple[int, str]] = set()
    alerts = 0
    for submission in waiting:
        keys = {(submission.integration.pk, fp) for fp in submission.fingerprints()}
        too_big = batch and alerts + len(submission.items) > MAX_BATCH_ALERTS
        if too_big or keys & taken or keys & held:
            left.append(submission)
            held |= keys
            continue
        batch.append(submission)
        taken |= keys
        alerts += len(submission.items)
    return batch, left


class Batcher:
    """Gathers one event loop's accepted requests and runs them in batches, one batch at a
    time, in a thread of its own (the database work is synchronous)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Submission, asyncio.Future]] = []
        self.draining: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-batch")

    async def submit(self, submission: Submission) -> None:
        """Returns once ``submission`` holds its outcomes or its error."""
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((submission, done))
        if self.draining is None:
            self.draining = asyncio.create_task(self._drain())
        # Shielded: a client that hangs up does not take its alerts out of a running batch.
        await asyncio.shield(done)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                futures = dict(self.waiting)
                batch, left = take(list(futures))
                self.waiting = [(submission, futures[submission]) for submission in left]
                try:
                    await loop.run_in_executor(self.executor, _run_in_thread, batch)
                except BaseException as exc:  # cancelled at shutdown: never leave a request hanging
                    for submission in batch:
                        submission.error = submission.error or exc
                    raise
                finally:
                    for submission in batch:
                        if not futures[submission].done():
                            futures[submission].set_result(None)
        finally:
            self.draining = None


def _run_in_thread(batch: list[Submission]) -> None:
    try:
        run(batch)
    finally:
        # As at the end of a request: the connection goes back (to the pool, on PostgreSQL).
        close_old_connections()


_batchers: dict[asyncio.AbstractEventLoop, Batcher] = {}


def batcher() -> Batcher:
    """This event loop's batcher (a web process runs one loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _batchers:
        _batchers[loop] = Batcher()
    return _batchers[loop]
