"""What every check kind shares: the observation a run makes, and the shape of a kind module.

A check kind is one module in this package that declares everything about one way of checking:

- ``KIND`` (the stored value) and ``LABEL``; model choices derive from the registry;
- ``PLACEHOLDERS``: the condition placeholders its observations fill (``STATUS``, ``BODY``, …);
- ``DEFAULT_CONDITIONS``: what "up" means when the user writes no condition;
- ``validate(config: dict) -> dict``: the config, normalised, or ``InvalidConfig`` naming every
  wrong field (the admin form, the API serializer and "test this configuration" all call it);
- ``async def observe(config: dict, timeout: float) -> Observation``: one run against the target.
  It never raises for what the target does (refused, timed out, bad certificate, wrong answer):
  that is an Observation with ``reached=False`` and a precise ``error``. It raises only for bugs.

Conditions (``probes.conditions``) then decide up or down from ``Observation.values``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Bounded: a result row keeps this much of a response, and an alert shows it.
EXCERPT_LIMIT = 2_000


class InvalidConfig(ValueError):
    """A check's configuration is wrong; ``fields`` maps each field name to its message."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))


@dataclass
class Observation:
    """What one run of a check saw.

    ``reached``: the target answered at all (False: refused, timed out, TLS failed, DNS
    failed …, and ``error`` says which, precisely: "connection refused by 127.0.0.1:8443",
    "timed out after 5.0 s waiting for the response headers", "certificate has expired
    (notAfter 2026-01-01)"). ``values``: the placeholders' values for the conditions, keyed
    by name without brackets — STATUS (int), RESPONSE_TIME (float, milliseconds), BODY (str),
    HEADERS (dict, lower-case names), IP (str), CONNECTED (bool), CERT_EXPIRY (float,
    milliseconds until notAfter), DNS_RCODE (str such as "NOERROR"), VALUE (number, str or
    bool), CONTEXT (dict of a journey's variables). ``timings``: phase timings in
    milliseconds where the kind knows them (dns, connect, tls, request, first_byte, total).
    ``excerpt``: the start of the response, at most EXCERPT_LIMIT characters. ``details``:
    anything else worth showing on the run's page (a journey's steps, both values of a
    consistency check and their difference, ping loss and RTTs).
    """

    reached: bool
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    excerpt: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def excerpt(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[:EXCERPT_LIMIT]
