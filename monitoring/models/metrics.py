"""Metric series, samples and threshold rules (filled in by the metrics work)."""
