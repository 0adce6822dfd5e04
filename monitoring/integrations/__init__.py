"""Incoming alert formats: one small parser module per sender, behind a kind → parser registry.

Each module turns its sender's real wire format into ``monitoring.pipeline.AlertInput`` items
with ``parse(data, now)``, raising ``Invalid`` (with every problem by field path) before anything
is stored. Adding a sender: write the module, add it here and a route in ``ingest_urls``.
"""

from __future__ import annotations

from types import ModuleType

from monitoring.integrations import alertmanager, events_v2, generic, grafana, prometheus
from monitoring.integrations.base import Invalid
from monitoring.models import IntegrationKind

PARSERS: dict[str, ModuleType] = {
    IntegrationKind.ALERTMANAGER: alertmanager,
    IntegrationKind.PROMETHEUS: prometheus,
    IntegrationKind.GRAFANA: grafana,
    IntegrationKind.EVENTS_V2: events_v2,
    IntegrationKind.GENERIC: generic,
}


def parser_for(kind: str) -> ModuleType:
    return PARSERS[kind]


__all__ = ["PARSERS", "Invalid", "parser_for"]
