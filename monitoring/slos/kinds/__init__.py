"""Monitoring's own SLI kinds, registered when the app starts (``MonitoringConfig.ready``)."""

from monitoring.slos import registry
from monitoring.slos.kinds.metric_ratio import MetricRatio
from monitoring.slos.kinds.probe_availability import ProbeAvailability
from monitoring.slos.kinds.probe_latency import ProbeLatency


def register_all() -> None:
    for indicator in (ProbeAvailability(), ProbeLatency(), MetricRatio()):
        registry.register(indicator)
