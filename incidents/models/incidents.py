"""Incidents, their alerts and per-service incident settings (grouping, auto-resolve)."""
