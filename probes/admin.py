"""Probes admin, one module per area (imported so the admin registers them)."""

from probes.heartbeats import admin as heartbeats  # noqa: F401
