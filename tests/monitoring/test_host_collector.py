"""The host collector: real psutil readings, recorded for the built-in system team."""

from __future__ import annotations

import socket

import psutil

from monitoring.metrics import SYSTEM_TEAM_SLUG, collect_host_metrics, system_team
from monitoring.models import MetricSample, MetricSeries
from tocsin.models import Team


def values() -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("mount", "")): s.last_value
        for s in MetricSeries.objects.filter(team__slug=SYSTEM_TEAM_SLUG)
    }


def test_it_records_real_host_numbers_for_the_system_team(db):
    recorded = collect_host_metrics()
    assert recorded.samples >= 10
    team = Team.objects.get(slug=SYSTEM_TEAM_SLUG)
    assert team.name == "Tocsin (system)"
    series = MetricSeries.objects.filter(team=team)
    assert {s.labels["host"] for s in series} == {socket.gethostname()}
    got = values()
    for name in ("host_cpu_percent", "host_memory_used_percent", "host_memory_available_percent"):
        assert 0 <= got[(name, "")] <= 100
    # Memory moves a little between two readings, but not by much.
    assert abs(got[("host_memory_used_percent", "")] - psutil.virtual_memory().percent) < 10
    load1, _load5, _load15 = psutil.getloadavg()
    assert got[("host_load1", "")] >= 0
    assert abs(got[("host_load1", "")] - load1) < 5
    assert 0 <= got[("host_disk_used_percent", "/")] <= 100
    assert got[("host_disk_free_bytes", "/")] > 0
    net = psutil.net_io_counters()
    assert 0 < got[("host_network_received_bytes_total", "")] <= net.bytes_recv
    kinds = dict(series.values_list("name", "kind"))
    assert kinds["host_network_sent_bytes_total"] == "counter"
    assert kinds["host_cpu_percent"] == "gauge"


def test_later_runs_reuse_the_team_and_the_series(db):
    collect_host_metrics()
    count = MetricSeries.objects.count()
    second = collect_host_metrics()
    assert second.new_series == 0
    assert MetricSeries.objects.count() == count
    assert Team.objects.filter(slug=SYSTEM_TEAM_SLUG).count() == 1
    assert MetricSample.objects.count() == 2 * second.samples


def test_the_system_team_is_created_once(db):
    assert system_team().pk == system_team().pk
