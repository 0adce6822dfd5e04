"""Credentials that travel in URL paths, and the one function that takes them out of logs.

Some URLs are secrets: ingest keys (``/ingest/<kind>/<key>/``, docs/ingest.md promises they are
never logged), signed one-click incident links, iCal feed tokens, heartbeat ping URLs (the UUID,
or the service's ping key, is all a sender needs), status page confirm and unsubscribe links.
Both the web server's access log and Django's own log records (e.g. "Forbidden (CSRF cookie not
set.): <path>") pass through :func:`redact`; the ``LOGGING`` setting installs
:class:`RedactSecrets` on the console handler. docs/security-secrets.md lists them all, and the
test suite scans the logs of its own servers for every secret it handed out
(tests/tocsin/test_log_secrets.py).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# A path starts the string or follows a space, quote, colon, parenthesis…, never a path character,
# so "/oncall/…" does not match inside "/api/v1/oncall/…".
_AT_PATH_START = r"(?<![\w/.~%-])"
_PATH_CHARS = r"[^?#\s\"']"

SECRET_PATHS = [
    # Ingest: everything after the kind, since the key may be followed by a sender's suffix
    # (/ingest/prometheus/<key>/api/v2/alerts) and a mistyped kind still carries the key.
    re.compile(rf"{_AT_PATH_START}(/ingest/[^/?#\s\"']+/){_PATH_CHARS}+"),
    re.compile(rf"{_AT_PATH_START}(/incidents/act/)[^/?#\s\"']+"),  # signed one-click links
    re.compile(rf"{_AT_PATH_START}(/schedules/\d+/ical/)[^/?#\s\"']+"),  # iCal feed tokens
    re.compile(rf"{_AT_PATH_START}(/oncall/)[^/?#\s\"']+"),
    # Heartbeat pings: /ping/<uuid>[/start…] and /ping/<ping key>/<slug>[/…]; all of it goes.
    re.compile(rf"{_AT_PATH_START}(/ping/){_PATH_CHARS}+"),
    # Status page subscriptions, at /status/<slug>/… and at / of a page's own domain.
    re.compile(
        rf"{_AT_PATH_START}((?:/status/[^/?#\s\"']+)?/(?:confirm|unsubscribe)/)[^/?#\s\"']+"
    ),
]
# Query parameters whose name says they hold a secret, and OAuth/OpenID Connect's ``code`` (a
# sign-in callback's one-time code; ``state`` is left: alert lists filter by ``?state=``).
SECRET_QUERY = re.compile(
    r"([?&](?:[^=&#\s\"']*(?:key|token|secret|password|signature|otp)[^=&#\s\"']*|code)=)"
    r"[^&#\s\"']*",
    re.I,
)


def redact(text: str) -> str:
    """``text`` (a path, or a log message naming paths) with the credentials in it replaced."""
    for pattern in SECRET_PATHS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return SECRET_QUERY.sub(rf"\g<1>{REDACTED}", text)


# Formats a record's exception as the standard formatter would (logging.Formatter's default).
_TRACEBACKS = logging.Formatter()


class RedactSecrets(logging.Filter):
    """A handler filter: log records leave with credentials in paths redacted, in the message
    and in the traceback (``log.exception("…")`` with a failed request's URL in the exception's
    message, or in a chained one's).

    A traceback with a secret in it is formatted here and kept redacted in ``exc_text``, which
    the formatter prints instead of formatting ``exc_info`` again; ``exc_info`` is then dropped,
    since the exception object still holds the secret and a formatter or handler that reads it
    (structured JSON logs, error reporters) would write it out. Records without one are left
    as they are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as it would
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        self._redact_traceback(record)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

    @staticmethod
    def _redact_traceback(record: logging.LogRecord) -> None:
        # exc_text: formatted already by another handler's formatter (it is cached on the record).
        text = record.exc_text
        if not text and record.exc_info and record.exc_info[0] is not None:
            try:
                text = _TRACEBACKS.formatException(record.exc_info)
            except Exception:  # an exception whose str() fails: as the handler would report it
                return
        if not text:
            return
        clean = redact(text)
        if clean != text:
            record.exc_text, record.exc_info = clean, None
