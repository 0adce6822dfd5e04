"""Admin for this area (see monitoring/admin/__init__.py)."""
