"""Monitoring admin, one module per area."""

from monitoring.admin import alerts, databases, metrics, slos, suppression  # noqa: F401
