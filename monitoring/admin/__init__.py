"""Monitoring admin, one module per area."""

from monitoring.admin import alerts, databases, metrics, suppression  # noqa: F401
