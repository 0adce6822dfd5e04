"""Admin for this area (see incidents/admin/__init__.py)."""
