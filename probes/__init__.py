"""Synthetic checks and heartbeats (roadmap)."""
