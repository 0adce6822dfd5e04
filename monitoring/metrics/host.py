"""The host collector: CPU, memory, load and disk of the machine Tocsin runs on, every minute,
recorded under the built-in "Tocsin (system)" team.
"""

from __future__ import annotations

import socket

from django.db import IntegrityError, transaction

from monitoring.metrics.samples import Recorded, SampleInput, record_samples
from monitoring.models import (
    MetricKind,
)
from monitoring.models.metrics import (
    MAX_LABEL_VALUE_LENGTH,
)
from tocsin.models import Team

SYSTEM_TEAM_SLUG = "tocsin-system"
SYSTEM_TEAM_NAME = "Tocsin (system)"

# --- The host collector -------------------------------------------------------------------------


def system_team() -> Team:
    """The built-in team that owns Tocsin's own metrics, created on first use.

    Named "Tocsin (system)" (slug ``tocsin-system``); superusers see it, and administrators may
    add members to let others chart the host or write rules on it.
    """
    team = Team.objects.filter(slug=SYSTEM_TEAM_SLUG).first()
    if team is not None:
        return team
    try:
        with transaction.atomic():
            return Team.objects.create(
                name=SYSTEM_TEAM_NAME,
                slug=SYSTEM_TEAM_SLUG,
                description="Built in: metrics about the host Tocsin runs on.",
            )
    except IntegrityError:  # created concurrently
        return Team.objects.get(slug=SYSTEM_TEAM_SLUG)


_cpu_primed = False


def _cpu_percent() -> float:
    """CPU use since the previous call in this process (the first call measures a short while:
    psutil's very first non-blocking reading is a meaningless 0.0)."""
    import psutil

    global _cpu_primed
    if not _cpu_primed:
        _cpu_primed = True
        return float(psutil.cpu_percent(interval=0.2))
    return float(psutil.cpu_percent(interval=None))


def host_samples() -> list[SampleInput]:
    """What the host looks like now, as samples labelled with the host name."""
    import psutil

    host = socket.gethostname()[:MAX_LABEL_VALUE_LENGTH]

    def gauge(name: str, value: float, **labels: str) -> SampleInput:
        return SampleInput(name, float(value), {"host": host, **labels}, kind=MetricKind.GAUGE)

    memory = psutil.virtual_memory()
    samples = [
        gauge("host_cpu_percent", _cpu_percent()),
        gauge("host_memory_used_percent", memory.percent),
        gauge("host_memory_available_percent", memory.available / memory.total * 100),
    ]
    load1, load5, load15 = psutil.getloadavg()
    samples += [
        gauge("host_load1", load1),
        gauge("host_load5", load5),
        gauge("host_load15", load15),
    ]

    mounts = {"/"} | {part.mountpoint for part in psutil.disk_partitions(all=False)}
    for mount in sorted(mounts)[:MAX_MOUNTS]:
        try:
            usage = psutil.disk_usage(mount)
        except OSError:  # unmounted meanwhile, or not readable by us
            continue
        samples.append(gauge("host_disk_used_percent", usage.percent, mount=mount[:200]))
        samples.append(gauge("host_disk_free_bytes", usage.free, mount=mount[:200]))

    net = psutil.net_io_counters()
    if net is not None:
        for name, value in (
            ("host_network_sent_bytes_total", net.bytes_sent),
            ("host_network_received_bytes_total", net.bytes_recv),
        ):
            samples.append(SampleInput(name, float(value), {"host": host}, kind=MetricKind.COUNTER))
    return samples


# Enough for any real host; a machine with hundreds of bind mounts should not flood the table.
MAX_MOUNTS = 20


def collect_host_metrics() -> Recorded:
    """The periodic task: record this host's CPU, memory, disk, network and load for the
    "Tocsin (system)" team (see ``system_team``)."""
    return record_samples(system_team(), host_samples())
