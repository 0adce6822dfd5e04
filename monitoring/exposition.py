"""Tocsin's own /metrics, in the Prometheus text format, for whoever monitors the monitor.

Guarded by ``Authorization: Bearer <TOCSIN_METRICS_TOKEN>``; with no token configured the page
does not exist (404), so nothing is exposed by default. Values are read at scrape time: alert
ingestion counters and latencies of this process (``monitoring.ingest.stats``), and from the
database the firing alerts, the task queue, the event log, worker heartbeats and rule states.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitoring.ingest import stats as ingest_stats
from monitoring.models import Alert, AlertRuleState, AlertStatus, Severity
from tocsin.models import Event, WorkerHeartbeat

log = logging.getLogger(__name__)


def _queue_size() -> int | None:
    from django_q.brokers import get_broker

    broker = get_broker()
    try:
        return int(broker.queue_size())
    finally:
        close = getattr(broker, "close", None)
        if callable(close):
            close()


def _live_subscribers() -> int:
    """WebSocket subscribers of this process (each event loop has one hub)."""
    from tocsin.live.hub import _hubs

    return sum(hub.subscriber_count for hub in list(_hubs.values()))


class TocsinCollector(Collector):
    """Reads everything at scrape time; a failing source is skipped (and counted), not fatal."""

    def collect(self) -> Iterator[Metric]:
        failures = 0
        for part in (
            self._ingest,
            self._alerts,
            self._rules,
            self._queue,
            self._events,
            self._workers,
            self._live,
        ):
            try:
                yield from part()
            except Exception:
                log.exception("/metrics: %s failed", part.__name__)
                failures += 1
        errors = GaugeMetricFamily(
            "tocsin_scrape_errors", "Parts of this scrape that could not be read (see the logs)."
        )
        errors.add_metric([], failures)
        yield errors

    def _ingest(self) -> Iterator[Metric]:
        snap = ingest_stats.snapshot()
        received = CounterMetricFamily(
            "tocsin_alerts_received",
            "Alerts received by this process by source and pipeline result (created, resent, "
            "…), and refused requests by reason (invalid, rate_limited, …).",
            labels=["source", "result"],
        )
        for (source, result), count in sorted(snap["counts"].items()):
            received.add_metric([source, result], count)
        yield received
        latency = HistogramMetricFamily(
            "tocsin_ingest_duration_seconds",
            "Time to handle one ingest request, by source (this process).",
            labels=["source"],
        )
        for source, hist in sorted(snap["latency"].items()):
            buckets = [(_le(bound), count) for bound, count in hist["buckets"]]
            latency.add_metric([source], buckets, sum_value=hist["sum"])
        yield latency
        for name, text in (
            ("batches", "Pipeline batches this process ran for ingest requests."),
            (
                "requests",
                "Ingest requests those batches held (several per batch when "
                "concurrent requests were merged).",
            ),
        ):
            counter = CounterMetricFamily(f"tocsin_ingest_batch_{name}", text)
            counter.add_metric([], snap["batches"][name])
            yield counter

    def _alerts(self) -> Iterator[Metric]:
        firing = GaugeMetricFamily(
            "tocsin_alerts_firing",
            "Firing alerts by severity and whether they are suppressed.",
            labels=["severity", "suppressed"],
        )
        rows = (
            Alert.objects.filter(status=AlertStatus.FIRING)
            .order_by()
            .values("severity", "suppression")
            .annotate(n=Count("id"))
        )
        counts = {(s, flag): 0 for s in Severity.values for flag in ("false", "true")}
        for row in rows:
            key = (row["severity"], "true" if row["suppression"] else "false")
            counts[key] = counts.get(key, 0) + row["n"]
        for (severity, suppressed), n in counts.items():
            firing.add_metric([severity, suppressed], n)
        yield firing

    def _rules(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "tocsin_rule_series_firing", "Series for which a threshold rule is firing."
        )
        states.add_metric([], AlertRuleState.objects.filter(firing=True).count())
        yield states

    def _queue(self) -> Iterator[Metric]:
        size = _queue_size()
        depth = GaugeMetricFamily("tocsin_task_queue_depth", "Tasks waiting in the queue.")
        depth.add_metric([], size if size is not None else float("nan"))
        yield depth

    def _events(self) -> Iterator[Metric]:
        # The highest id rather than COUNT(*): an index lookup on a table that only grows.
        # (It counts ids a rolled-back transaction used up, too.)
        top = Event.objects.aggregate(m=Max("id"))["m"] or 0
        events = CounterMetricFamily("tocsin_events", "Events written to the event log.")
        events.add_metric([], top)
        yield events

    def _workers(self) -> Iterator[Metric]:
        now = timezone.now()
        stale_after = settings.TOCSIN_WORKER_STALE_AFTER
        beats = list(WorkerHeartbeat.objects.values_list("last_seen_at", flat=True))
        age = GaugeMetricFamily(
            "tocsin_worker_heartbeat_age_seconds",
            "Seconds since the newest worker heartbeat (NaN when no worker ever reported).",
        )
        age.add_metric([], (now - max(beats)).total_seconds() if beats else float("nan"))
        yield age
        alive = GaugeMetricFamily(
            "tocsin_workers_alive",
            f"Worker clusters with a heartbeat in the last {stale_after} seconds.",
        )
        alive.add_metric([], sum(1 for b in beats if (now - b).total_seconds() <= stale_after))
        yield alive

    def _live(self) -> Iterator[Metric]:
        live = GaugeMetricFamily(
            "tocsin_live_subscribers", "WebSocket subscribers of the live relay in this process."
        )
        live.add_metric([], _live_subscribers())
        yield live


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TocsinCollector())
    return generate_latest(registry)


def _authorised(request: HttpRequest, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    token = getattr(settings, "TOCSIN_METRICS_TOKEN", "") or ""
    if not token:
        raise Http404("/metrics is off: set TOCSIN_METRICS_TOKEN to enable it")
    if not _authorised(request, token):
        response = HttpResponse(
            "send 'Authorization: Bearer <TOCSIN_METRICS_TOKEN>'\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
