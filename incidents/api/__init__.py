"""Incidents REST endpoints, one module per area, each exposing a DRF ``router``."""
