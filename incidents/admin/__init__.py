"""Incidents admin, one module per area."""

from incidents.admin import incidents, notifications, schedules  # noqa: F401
