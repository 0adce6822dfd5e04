"""Monitoring admin, one module per area."""

from monitoring.admin import alerts, metrics, suppression  # noqa: F401
