"""The integration kinds: one module per kind, and the registry that maps kind → module.

A kind module declares everything about one sender:

- ``KIND`` (the stored value) and ``LABEL``: ``IntegrationKind``'s choices derive from these;
- ``parse(data, now) -> list[AlertInput]``: the sender's real wire format, validated whole
  (raising ``Invalid`` naming every problem by field path) before anything is stored;
- ``ROUTES``: its URL(s) under ``/ingest/``, each naming the ingest view that answers it;
- ``SETUP_TITLE``, ``SETUP_PATH`` and ``setup_steps(url, key)``: what the service page tells
  people to paste into the sender;
- ``reply(outcomes, received)``: the answer the sender expects.
- ``USER_CREATABLE = False`` for kinds only Tocsin creates (``internal``).

Adding a kind: write its module, add it to ``MODULES`` below (at the end: the order is the
choices' order, which migrations record) and a test. Routes, choices, parsers, setup steps and
URLs on the service page follow.
"""

from __future__ import annotations

from types import ModuleType

from django.conf import settings

from monitoring.ingest.kinds import alertmanager, events_v2, generic, grafana, internal, prometheus
from monitoring.ingest.kinds.base import Invalid, Route, Step

MODULES: tuple[ModuleType, ...] = (alertmanager, prometheus, grafana, events_v2, generic, internal)
KINDS: dict[str, ModuleType] = {module.KIND: module for module in MODULES}
KEY_PLACEHOLDER = "<your key>"


def choices() -> list[tuple[str, str]]:
    return [(module.KIND, module.LABEL) for module in MODULES]


def get(kind: str) -> ModuleType:
    return KINDS[kind]


def parser_for(kind: str) -> ModuleType:
    return KINDS[kind]


def user_creatable() -> list[str]:
    return [module.KIND for module in MODULES if getattr(module, "USER_CREATABLE", True)]


def routes() -> list[tuple[str, Route]]:
    return [(module.KIND, route) for module in MODULES for route in module.ROUTES]


def base_url() -> str:
    return settings.TOCSIN_BASE_URL.rstrip("/")


def ingest_url(kind: str, key: str | None = None) -> str:
    """The URL a sender of ``kind`` posts to; ``<your key>`` stands in for an unknown key."""
    module = KINDS.get(kind)
    if module is None or not module.SETUP_PATH:
        return ""
    return base_url() + module.SETUP_PATH.format(key=key or KEY_PLACEHOLDER)


def setup_steps(kind: str, key: str | None = None) -> list[Step]:
    """How to point a sender at an integration: a sentence and a snippet per step. With ``key``
    (just created or rotated) the snippets are ready to paste; otherwise the key reads
    ``<your key>``, since Tocsin keeps only its hash."""
    module = KINDS.get(kind)
    if module is None:
        return []
    return module.setup_steps(ingest_url(kind, key), key or KEY_PLACEHOLDER)


def setup_title(kind: str) -> str:
    module = KINDS.get(kind)
    return module.SETUP_TITLE if module is not None else kind


__all__ = [
    "KEY_PLACEHOLDER",
    "KINDS",
    "MODULES",
    "Invalid",
    "base_url",
    "choices",
    "get",
    "ingest_url",
    "parser_for",
    "routes",
    "setup_steps",
    "setup_title",
    "user_creatable",
]
