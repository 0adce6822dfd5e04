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
:func:`batcher` (a :class:`tocsin.group_commit.GroupCommit`) gathers the requests on the event
loop and runs each batch in a thread of its own.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings

from monitoring.ingest import key_cache
from monitoring.ingest import stats as ingest_stats
from monitoring.models import Integration
from monitoring.pipeline import AlertInput, Outcome, process
from tocsin.group_commit import GroupCommit, for_this_loop, write_all_or_each

logger = logging.getLogger(__name__)

# A batch stops growing at this many alerts (a bound on one transaction's length); the rest
# waits for the next one.
MAX_BATCH_ALERTS = 2_000
# While a batch is being written, another starts beside it (TOCSIN_INGEST_WRITERS > 1) only
# with at least this many alerts. Smaller ones wait and join the next batch: a batch's fixed
# cost (a dozen statements) is worth overlapping for a hundred alerts, not for one — measured
# with one alert per request, starting them at once lost a quarter of the rate.
MIN_ALERTS_BESIDE_ANOTHER = 100
# How long a busy server waits for the requests just answered to come back before it writes
# what waits (tocsin.group_commit.GroupCommit's ``linger``). On loopback a client's next
# request arrives within a millisecond; two milliseconds bound the cost to a request's latency.
INGEST_LINGER_SECONDS = 0.002


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
        write_all_or_each(_process, group)
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


def take(
    waiting: list[Submission], busy: list[Submission]
) -> tuple[list[Submission], list[Submission]]:
    """The next batch from ``waiting`` (in arrival order) and what stays waiting: a request
    sharing a fingerprint with one being written (``busy``), taken or left (it must follow
    that one), or past the size bound, waits for a later batch; so does a small batch while
    another is being written."""
    batch: list[Submission] = []
    left: list[Submission] = []
    taken: set[tuple[int, str]] = set()
    held: set[tuple[int, str]] = {
        (submission.integration.pk, fp) for submission in busy for fp in submission.fingerprints()
    }
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
    if busy and alerts < MIN_ALERTS_BESIDE_ANOTHER:
        return [], waiting
    return batch, left


def batcher() -> GroupCommit[Submission]:
    """This event loop's ingest batcher (a web process runs one loop)."""
    return for_this_loop(
        "ingest-batch",
        lambda: GroupCommit(
            run,
            take,
            name="ingest-batch",
            writers=settings.TOCSIN_INGEST_WRITERS,
            linger=INGEST_LINGER_SECONDS,
        ),
    )
