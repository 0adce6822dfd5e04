"""Verified backups (roadmap)."""
