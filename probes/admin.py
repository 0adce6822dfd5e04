"""Probes admin, one module per area (imported so the admin registers them)."""

from probes.checks import admin as checks  # noqa: F401
from probes.heartbeats import admin as heartbeats  # noqa: F401
