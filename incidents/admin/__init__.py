"""Incidents admin, one module per area."""

from incidents.admin import incidents, notifications, postmortems, schedules, slas  # noqa: F401
