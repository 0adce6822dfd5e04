"""Escalation policies and their steps."""
