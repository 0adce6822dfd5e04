"""Silences, inhibition rules and maintenance windows (filled in by the suppression work)."""
