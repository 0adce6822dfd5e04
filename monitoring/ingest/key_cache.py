"""The ingest key → integration lookup, remembered for a few seconds in each web process.

Every ingest request starts by finding the integration its key opens: a query over three tables
and three model instances to build. Senders re-send the same key many times a second in a
storm, so each process keeps the answer for up to ``TOCSIN_INGEST_KEY_CACHE_SECONDS`` (10 s).

A key that is rotated or revoked, or whose integration or service changes or goes, must stop
working at once (docs/ingest.md promises it). Each such change bumps a shared *key version*
after it commits — in Redis when Redis is configured, else in a small file under
``TOCSIN_VAR_DIR`` that every process on the host reads — and a process trusts its remembered
answers only while the version is the one it saw when it remembered them. The file is read on
every request (a few microseconds); Redis at most every ``VERSION_CHECK_SECONDS`` (1 s) per
process, so that a storm of re-sends costs no Redis round trip for the key: there a changed key
stops working in the other processes within that second. If the version cannot be read the
cache is not used; if a bump could not be written (Redis down at that moment), other processes
go on accepting the old key for at most ``TOCSIN_INGEST_KEY_CACHE_SECONDS``. The process that
made the change forgets at once, before the commit, so a test (or an admin acting and then
posting) never sees the old answer.

Each request gets its own copy of the cached integration (unpickled), so nothing a request does
to it reaches another request or thread. Unknown keys are not remembered: a client guessing
keys must not be able to fill the memory.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from monitoring.models import Integration, Service
from monitoring.models.catalog import hash_key

logger = logging.getLogger(__name__)

DEFAULT_SECONDS = 10.0
# More distinct keys than this in one process: start again rather than grow without bound.
MAX_ENTRIES = 10_000
VERSION_CACHE_KEY = "ingest-key-version"
VERSION_FILE = "ingest-key-version"
_MISSING = "missing"  # the version before any change was ever recorded
# How often a process reads the version from Redis (seconds).
VERSION_CHECK_SECONDS = 1.0
# The Redis version last read, and when (monotonic); reset whenever this process forgets.
_redis_version: tuple[str, float] | None = None

# (key hash, kind) -> (version, monotonic deadline, pickled integration)
_entries: dict[tuple[str, str | None], tuple[str, float, bytes]] = {}
# Other answers the ingest path reads on every batch and the same kind of change invalidates
# (``remembered_answer``): (namespace, key) -> (version, monotonic deadline, pickled answer).
_answers: dict[tuple[str, Any], tuple[str, float, bytes]] = {}


def _seconds() -> float:
    return float(getattr(settings, "TOCSIN_INGEST_KEY_CACHE_SECONDS", DEFAULT_SECONDS))


def _version_file() -> Path:
    return Path(settings.VAR_DIR) / VERSION_FILE


def current_version() -> str | None:
    """The shared key version, or None when it cannot be read (then nothing is trusted)."""
    global _redis_version
    try:
        if settings.REDIS_URL:
            now = time.monotonic()
            if _redis_version is None or now - _redis_version[1] >= VERSION_CHECK_SECONDS:
                _redis_version = (str(cache.get(VERSION_CACHE_KEY, _MISSING)), now)
            return _redis_version[0]
        try:
            return _version_file().read_text()
        except FileNotFoundError:
            return _MISSING
    except Exception:
        logger.warning("ingest key version unavailable; looking keys up", exc_info=True)
        return None


def bump_version() -> None:
    """Tell every process that remembered answers may be wrong now."""
    token = uuid.uuid4().hex
    try:
        if settings.REDIS_URL:
            cache.set(VERSION_CACHE_KEY, token, timeout=None)
            return
        path = _version_file()
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(token)
        os.replace(temporary, path)  # readers see the old token or the new one, never half
    except Exception:
        logger.warning(
            "could not publish an ingest key change; other processes accept the old key "
            "for up to %s s",
            _seconds(),
            exc_info=True,
        )


def forget_keys() -> None:
    """After a change to integrations or services: forget here now, everywhere after commit."""
    _forget_here()
    transaction.on_commit(_bump_and_forget_again)


def _forget_here() -> None:
    global _redis_version
    _entries.clear()
    _answers.clear()
    _redis_version = None


def _bump_and_forget_again() -> None:
    # Between the change and its commit another thread of this process may have read the old
    # row again and remembered it under the old version (with Redis, read up to a second ago):
    # forget once more now that the change is what everyone reads.
    bump_version()
    _forget_here()


def integration_for_key(raw: str, kind: str | None) -> Integration | None:
    """``Integration.by_key(raw, kind)``, from this process's memory when it may be trusted."""
    return _remembered_in(_entries, (hash_key(raw), kind), lambda: Integration.by_key(raw, kind))


def remembered_answer(namespace: str, key: Any, load: Callable[[], Any]) -> Any:
    """``load()``, remembered in this process as the integration of a key is. For what every
    ingest batch reads and rarely changes (a service's incident settings); whoever changes such
    a row calls :func:`forget_keys` (a signal handler, :func:`forget_when_changed`), so the
    change is seen at once here and, after its commit, everywhere within the version check's
    second."""
    return _remembered_in(_answers, (namespace, key), load)


def _remembered_in(
    store: dict[Any, tuple[str, float, bytes]], entry_key: Any, load: Callable[[], Any]
) -> Any:
    """``load()`` or what ``store`` remembers of it: trusted while the shared version is the
    one seen when it was loaded, for at most ``TOCSIN_INGEST_KEY_CACHE_SECONDS``, and handed
    out as a copy of its own (unpickled). A None answer is not remembered (unknown keys: a
    client guessing keys must not fill the memory)."""
    seconds = _seconds()
    version = current_version() if seconds > 0 else None
    if version is None:
        return load()
    entry = store.get(entry_key)
    now = time.monotonic()
    if entry is not None and entry[0] == version and entry[1] > now:
        return pickle.loads(entry[2])
    # The version was read before the query: a change committed in between bumps it again,
    # so what is stored below is trusted only until the next request sees the new version.
    answer = load()
    if answer is None:
        store.pop(entry_key, None)
        return None
    if len(store) >= MAX_ENTRIES:
        store.clear()
    store[entry_key] = (version, now + seconds, pickle.dumps(answer))
    return answer


def remembered(raw: str, kind: str | None) -> Integration | None:
    """The remembered answer when it is trusted without any I/O (no query, no Redis round trip;
    the embedded default's version file is a few microseconds), so the event loop may use it;
    None when only :func:`integration_for_key` can tell."""
    if _seconds() <= 0:
        return None
    if settings.REDIS_URL:
        if _redis_version is None or time.monotonic() - _redis_version[1] >= VERSION_CHECK_SECONDS:
            return None
        version: str | None = _redis_version[0]
    else:
        version = current_version()
    entry = _entries.get((hash_key(raw), kind))
    if entry is None or version is None or entry[0] != version or entry[1] <= time.monotonic():
        return None
    return pickle.loads(entry[2])


def remember(integration: Integration) -> None:
    """Update the remembered copy after a request changed it (``last_received_at``)."""
    entry_key = (integration.key_hash, integration.kind)
    entry = _entries.get(entry_key)
    if entry is not None:
        _entries[entry_key] = (entry[0], entry[1], pickle.dumps(integration))


def _changed(sender: Any, **kwargs: Any) -> None:
    forget_keys()


def forget_when_changed(model: type) -> None:
    """Any save or delete of ``model``'s rows (admin, API, services, cascades) makes remembered
    answers suspect. ``QuerySet.update()`` sends no signal: code that updates them that way
    calls :func:`forget_keys` itself."""
    name = f"{model._meta.app_label}.{model.__name__}"
    post_save.connect(_changed, sender=model, dispatch_uid=f"ingest-keys-{name}")
    post_delete.connect(_changed, sender=model, dispatch_uid=f"ingest-keys-{name}-d")


def connect() -> None:
    """Called from MonitoringConfig.ready(): integrations and services (other apps add what
    they remember with :func:`remembered_answer`)."""
    for model in (Integration, Service):
        forget_when_changed(model)
