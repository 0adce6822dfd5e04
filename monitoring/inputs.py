"""What every source hands the pipeline: ``AlertInput``, and the label fingerprint.

A leaf module (it imports no models), so the integration kinds' parsers can build inputs while
``monitoring.models`` derives its choices from them. Import these from ``monitoring.pipeline``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitoring.models.choices import AlertStatus, Severity


@dataclass
class AlertInput:
    """An alert as every sender's parser hands it over, normalised."""

    labels: dict[str, str]
    status: str = AlertStatus.FIRING
    severity: str = Severity.ERROR
    summary: str = ""
    description: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)
    fingerprint: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # A firing alert's future end (Prometheus' endsAt): it resolves then unless sent again.
    expected_end_at: datetime | None = None
    generator_url: str = ""
    # Events v2 "acknowledge": the sender says a person is on it.
    acknowledge: bool = False
    # A resolve because the expected end passed: ignored when a re-send moved the end since.
    expired: bool = False

    # The labels' digest, once (the batcher and the pipeline ask for it several times).
    _label_fingerprint: str = field(default="", init=False, repr=False, compare=False)

    def get_fingerprint(self) -> str:
        if self.fingerprint:
            return self.fingerprint
        if not self._label_fingerprint:
            self._label_fingerprint = fingerprint_labels(self.labels)
        return self._label_fingerprint

    def get_summary(self) -> str:
        return (
            self.summary
            or self.annotations.get("summary")
            or self.labels.get("alertname")
            or ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
            or "alert"
        )[:500]

    def content_hash(self) -> str:
        # The expected end is left out: Prometheus renews it on every send, and a renewal is a
        # cheap re-send, not a change.
        body = json.dumps(
            [
                self.status,
                self.severity,
                self.get_summary(),
                self.description,
                self.labels,
                self.annotations,
                self.details,
                self.links,
                self.generator_url,
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


def fingerprint_labels(labels: dict[str, str]) -> str:
    """Alertmanager-style: a digest over the sorted label pairs, independent of their order."""
    # Each name and value followed by 0xff (a byte UTF-8 never contains), hashed in one call:
    # a batch of a hundred new alerts spent more time in four update() calls per label.
    parts = [part.encode() for name, value in sorted(labels.items()) for part in (name, str(value))]
    return hashlib.sha256(b"\xff".join(parts) + b"\xff" if parts else b"").hexdigest()[:16]
