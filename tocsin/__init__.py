"""Tocsin project package and core app: teams, roles, tokens, the event log and live relay."""
