"""Alert ingestion, dedup, silences, metrics and rules (see the alerts issue)."""
