"""The suite greps its own logs: no secret handed out during a run may appear in a server's log.

Every web server, worker and command the tests start writes its output to a ``*.log`` file under
pytest's base temporary directory (``tests.live.start``). At the end of the session this plugin
reads them all and fails the run (exit status 1, with the offending lines) when one shows

- a secret the run created: ingest keys, heartbeat ping keys and UUIDs, signed action links,
  iCal feed tokens, status page subscription tokens and API tokens, each remembered as it is
  made (the functions that make them are wrapped to note their result; nothing else changes);
- or a credential-bearing path that is not redacted (``/ingest/<kind>/<anything but
  [redacted]>``, ``/incidents/act/…``, ``/ping/…``, …), whatever made the secret in it.

The databases are per test and gone by then, so the secrets are collected while they are made.
Secrets are remembered as their runs of 16+ URL-safe characters (a signed token's payload and
signature each), which lets the scan be one pass of one regular expression over each log.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

MIN_LENGTH = 16
_RUN = re.compile(rf"[A-Za-z0-9_-]{{{MIN_LENGTH},}}")
SECRETS: set[str] = set()

_AT_PATH_START = r"(?<![\w/.~%-])"
_NOT_REDACTED = r"(?!\[redacted\])[^\s\"'?#]"
# Paths whose next segment is a credential: anything there but "[redacted]" is a leak.
UNREDACTED_PATHS = re.compile(
    _AT_PATH_START
    + r"(?:/ingest/[^/?#\s\"']+/|/incidents/act/|/schedules/\d+/ical/|/oncall/|/ping/"
    + r"|(?:/status/[^/?#\s\"']+)?/(?:confirm|unsubscribe)/)"
    + _NOT_REDACTED
)


def remember(value: Any) -> None:
    """Note a secret (its long runs of URL-safe characters) for the end-of-run scan."""
    if value is not None:
        SECRETS.update(_RUN.findall(str(value)))


def _returns_secret(func: Any, pick: Any = lambda result: result) -> Any:
    if getattr(func, "_remembers_secrets", False):
        return func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        remember(pick(result))
        return result

    wrapper._remembers_secrets = True  # type: ignore[attr-defined]
    return wrapper


def _install() -> None:
    from django.db.models.signals import post_save

    from incidents.notifications import links
    from incidents.oncall import ical
    from incidents.statuspages import subscribers
    from monitoring.models import Integration
    from probes.heartbeats.models import Heartbeat
    from probes.heartbeats.pings import PingKey
    from tocsin.models import ApiToken

    Integration.new_key = staticmethod(_returns_secret(Integration.new_key))
    set_key = Integration.set_key
    if not getattr(set_key, "_remembers_secrets", False):

        @functools.wraps(set_key)
        def remembering_set_key(self: Any, raw: str) -> None:
            remember(raw)
            set_key(self, raw)

        remembering_set_key._remembers_secrets = True  # type: ignore[attr-defined]
        Integration.set_key = remembering_set_key
    PingKey.new_key = staticmethod(_returns_secret(PingKey.new_key))
    ApiToken.issue = classmethod(_returns_secret(ApiToken.issue.__func__, lambda r: r[1]))
    links.make_token = _returns_secret(links.make_token)
    ical.schedule_feed_token = _returns_secret(ical.schedule_feed_token)
    ical.user_feed_token = _returns_secret(ical.user_feed_token)
    subscribers.token_for = _returns_secret(subscribers.token_for)

    def heartbeat_saved(instance: Any, **kwargs: Any) -> None:
        remember(instance.uuid)

    post_save.connect(heartbeat_saved, sender=Heartbeat, weak=False, dispatch_uid="log-secrets")


@pytest.fixture(scope="session", autouse=True)
def _remember_secrets_as_they_are_made() -> None:
    _install()


def findings(root: Path, pattern: str = "*.log") -> list[str]:
    """``file:line: text`` for each line of the logs under ``root`` that shows a secret."""
    found = []
    for log in sorted(root.rglob(pattern)):
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            leaked = UNREDACTED_PATHS.search(line) or any(
                run in SECRETS for run in _RUN.findall(line)
            )
            if leaked:
                found.append(f"{log.relative_to(root)}:{number}: {line[:300]}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or factory._basetemp is None:
        return  # no test asked for a temporary directory: no server ran
    found = findings(factory.getbasetemp())
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "secrets in the logs of this run's servers", red=True)
        for line in found[:50]:
            reporter.write_line(line)
        if len(found) > 50:
            reporter.write_line(f"… and {len(found) - 50} more lines")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
