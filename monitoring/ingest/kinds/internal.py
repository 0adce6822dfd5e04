"""Alerts raised from inside Tocsin: metric rules, probes, backups, the notifier's breaker.

No URL and no parser: internal sources call ``monitoring.pipeline.raise_alert`` on a service
made by ``monitoring.services.ensure_internal_service``, which gives it an integration of this
kind so its alerts show where they came from. People cannot create one.
"""

from __future__ import annotations

from monitoring.ingest.kinds.base import Route, Step

KIND = "internal"
LABEL = "Tocsin internal"
SOURCE = KIND
USER_CREATABLE = False
ROUTES: list[Route] = []
SETUP_TITLE = LABEL
SETUP_PATH = ""
parse = None
reply = None


def setup_steps(url: str, key: str) -> list[Step]:
    return []
