"""Ready-made rule packs: threshold rules for PostgreSQL, MySQL/MariaDB, Redis and the host,
installed for a service in one step, in the spirit of the well-known Prometheus alert rule
collections (their thresholds, made to fit Tocsin's rules).

A pack's rules have no matchers: one rule covers every database of its kind in the team and
fires one alert per database (the samples' ``database`` label). Installing is idempotent: a
rule whose name the team has already is left as it is (tuned thresholds survive a re-install).
docs/database-health.md lists every rule with its threshold and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitoring.metrics import rules
from monitoring.models import AlertRule, Service


@dataclass(frozen=True)
class PackRule:
    name: str
    metric: str
    aggregation: str
    window: int  # seconds
    comparison: str
    threshold: float
    for_seconds: int
    severity: str
    summary: str

    def fields(self, service: Service) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": service,
            "metric": self.metric,
            "matchers": [],
            "aggregation": self.aggregation,
            "window_seconds": self.window,
            "comparison": self.comparison,
            "threshold": self.threshold,
            "for_seconds": self.for_seconds,
            "severity": self.severity,
            "labels": {},
            "summary_template": self.summary,
            "description_template": "",
            "enabled": True,
        }


M = 60
H = 3600

PACKS: dict[str, tuple[str, list[PackRule]]] = {
    "postgresql": (
        "PostgreSQL",
        [
            PackRule(
                "PostgreSQL down",
                "pg_up",
                "max",
                2 * M,
                "<",
                1,
                0,
                "critical",
                "PostgreSQL {{ labels.database }} does not answer",
            ),
            PackRule(
                "PostgreSQL connections near the limit",
                "pg_connections_used_percent",
                "max",
                5 * M,
                ">",
                80,
                2 * M,
                "warning",
                "PostgreSQL {{ labels.database }}: {{ value }} % of max_connections used",
            ),
            PackRule(
                "PostgreSQL long transaction",
                "pg_longest_transaction_seconds",
                "max",
                5 * M,
                ">",
                3600,
                0,
                "warning",
                "PostgreSQL {{ labels.database }}: a transaction open for {{ value }} s",
            ),
            PackRule(
                "PostgreSQL sessions waiting on locks",
                "pg_sessions_waiting_on_locks",
                "min",
                5 * M,
                ">",
                5,
                0,
                "warning",
                "PostgreSQL {{ labels.database }}: {{ value }} sessions wait on locks",
            ),
            PackRule(
                "PostgreSQL cache hit ratio low",
                "pg_cache_hit_percent",
                "avg",
                15 * M,
                "<",
                90,
                15 * M,
                "warning",
                "PostgreSQL {{ labels.database }}: cache hit ratio {{ value }} %",
            ),
            PackRule(
                "PostgreSQL replication lag",
                "pg_replication_lag_seconds",
                "max",
                5 * M,
                ">",
                300,
                0,
                "warning",
                "PostgreSQL {{ labels.database }}: replication {{ value }} s behind",
            ),
            PackRule(
                "PostgreSQL dead rows",
                "pg_dead_tuple_percent",
                "min",
                H,
                ">",
                20,
                0,
                "warning",
                "PostgreSQL {{ labels.database }}: {{ value }} % dead rows in a table",
            ),
            PackRule(
                "PostgreSQL deadlocks",
                "pg_deadlocks_total",
                "rate",
                15 * M,
                ">",
                0,
                0,
                "warning",
                "PostgreSQL {{ labels.database }}: deadlocks happen",
            ),
        ],
    ),
    "mysql": (
        "MySQL / MariaDB",
        [
            PackRule(
                "MySQL down",
                "mysql_up",
                "max",
                2 * M,
                "<",
                1,
                0,
                "critical",
                "MySQL {{ labels.database }} does not answer",
            ),
            PackRule(
                "MySQL connections near the limit",
                "mysql_connections_used_percent",
                "max",
                5 * M,
                ">",
                80,
                2 * M,
                "warning",
                "MySQL {{ labels.database }}: {{ value }} % of max_connections used",
            ),
            PackRule(
                "MySQL slow queries",
                "mysql_slow_queries_total",
                "rate",
                5 * M,
                ">",
                0.1,
                5 * M,
                "warning",
                "MySQL {{ labels.database }}: {{ value }} slow queries a second",
            ),
            PackRule(
                "MySQL InnoDB buffer pool hit ratio low",
                "mysql_innodb_buffer_pool_hit_percent",
                "avg",
                15 * M,
                "<",
                95,
                15 * M,
                "warning",
                "MySQL {{ labels.database }}: buffer pool hit ratio {{ value }} %",
            ),
            PackRule(
                "MySQL long query",
                "mysql_longest_query_seconds",
                "min",
                5 * M,
                ">",
                300,
                0,
                "warning",
                "MySQL {{ labels.database }}: a query running for {{ value }} s",
            ),
        ],
    ),
    "redis": (
        "Redis",
        [
            PackRule(
                "Redis down",
                "redis_up",
                "max",
                2 * M,
                "<",
                1,
                0,
                "critical",
                "Redis {{ labels.database }} does not answer",
            ),
            PackRule(
                "Redis memory near maxmemory",
                "redis_memory_used_percent",
                "max",
                5 * M,
                ">",
                90,
                5 * M,
                "warning",
                "Redis {{ labels.database }}: {{ value }} % of maxmemory used",
            ),
            PackRule(
                "Redis evicting keys",
                "redis_evicted_keys_total",
                "rate",
                5 * M,
                ">",
                0,
                0,
                "warning",
                "Redis {{ labels.database }}: {{ value }} keys evicted a second",
            ),
            PackRule(
                "Redis hit rate low",
                "redis_hit_rate_percent",
                "avg",
                15 * M,
                "<",
                80,
                15 * M,
                "info",
                "Redis {{ labels.database }}: hit rate {{ value }} %",
            ),
            PackRule(
                "Redis last save failed",
                "redis_last_bgsave_ok",
                "max",
                5 * M,
                "<",
                1,
                0,
                "warning",
                "Redis {{ labels.database }}: the last background save failed",
            ),
            PackRule(
                "Redis not saved for a day",
                "redis_last_save_age_seconds",
                "min",
                5 * M,
                ">",
                86400,
                0,
                "warning",
                "Redis {{ labels.database }}: nothing saved for {{ value }} s",
            ),
        ],
    ),
    "host": (
        "Host",
        [
            PackRule(
                "Host CPU busy",
                "host_cpu_percent",
                "avg",
                10 * M,
                ">",
                90,
                5 * M,
                "warning",
                "{{ labels.host }}: CPU {{ value }} % busy",
            ),
            PackRule(
                "Host memory low",
                "host_memory_available_percent",
                "max",
                5 * M,
                "<",
                10,
                5 * M,
                "warning",
                "{{ labels.host }}: {{ value }} % memory available",
            ),
            PackRule(
                "Host disk almost full",
                "host_disk_used_percent",
                "min",
                5 * M,
                ">",
                90,
                0,
                "warning",
                "{{ labels.host }} {{ labels.mount }}: {{ value }} % used",
            ),
        ],
    ),
}


def pack_names() -> list[str]:
    return list(PACKS)


def install(pack: str, service: Service, *, actor: Any = None) -> tuple[list[AlertRule], list[str]]:
    """Create the pack's rules for ``service``'s team, alerting ``service``; returns the rules
    created and the names skipped because the team has them already."""
    if pack not in PACKS:
        raise KeyError(f"no rule pack {pack!r} (there are: {', '.join(PACKS)})")
    existing = set(AlertRule.objects.filter(team=service.team).values_list("name", flat=True))
    created, skipped = [], []
    for rule in PACKS[pack][1]:
        if rule.name in existing:
            skipped.append(rule.name)
            continue
        created.append(rules.create_rule(service.team, actor=actor, **rule.fields(service)))
    return created, skipped
