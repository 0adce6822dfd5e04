"""Monitoring models, one module per concern; import them from here."""

from monitoring.models.alerts import Alert, AlertStatus, Severity, Suppression
from monitoring.models.catalog import Integration, IntegrationKind, Service
from monitoring.models.changes import ChangeEvent
from monitoring.models.databases import DatabaseKind, MonitoredDatabase
from monitoring.models.metrics import *  # noqa: F403
from monitoring.models.slos import ServiceLevelObjective, SLODay
from monitoring.models.suppression import *  # noqa: F403

__all__ = [
    "Alert",
    "AlertStatus",
    "ChangeEvent",
    "DatabaseKind",
    "Integration",
    "IntegrationKind",
    "MonitoredDatabase",
    "SLODay",
    "Service",
    "ServiceLevelObjective",
    "Severity",
    "Suppression",
]
