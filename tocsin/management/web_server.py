"""The one way Tocsin starts daphne (``manage.py web``, which ``manage.py run`` and the image use).

Two things daphne's own command line gets wrong for us:

- Its access log writes each request's full path, and some paths are credentials: ingest keys
  (``/ingest/<kind>/<key>/``), one-click incident links, iCal feed tokens. Whoever reads the log
  could post alerts or act on incidents. Our access log writes them redacted
  (:mod:`tocsin.redaction`).
- ``--proxy-headers`` makes daphne take the client address from ``X-Forwarded-For``, which any
  client can send. We pass it only when ``TOCSIN_BEHIND_PROXY`` says a proxy in front sets it;
  otherwise a failed sign-in would be recorded with whatever address the caller made up.
"""

from __future__ import annotations

from typing import Any

from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.server import Server

from tocsin.redaction import redact


class RedactingAccessLog(AccessLogGenerator):
    """daphne's NCSA-style access log, with credentials in paths replaced by ``[redacted]``."""

    def write_entry(self, host: Any, date: Any, request: str, *args: Any, **kwargs: Any) -> None:
        method, _, path = request.partition(" ")
        super().write_entry(host, date, f"{method} {redact(path)}", *args, **kwargs)
        self.stream.flush()  # one line per request, even when stdout is a pipe


class _Server(Server):
    def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
        if isinstance(action_logger, AccessLogGenerator):
            action_logger = RedactingAccessLog(action_logger.stream)
        super().__init__(*args, action_logger=action_logger, **kwargs)


class _CommandLine(CommandLineInterface):
    server_class = _Server


def daphne_arguments(host: str, port: int, *, behind_proxy: bool) -> list[str]:
    arguments = ["--bind", host, "--port", str(port)]
    if behind_proxy:
        arguments.append("--proxy-headers")
    return [*arguments, "tocsin.asgi:application"]


def serve(host: str, port: int, *, behind_proxy: bool) -> None:
    """Run daphne in this process until it is stopped (SIGINT/SIGTERM)."""
    _CommandLine().run(daphne_arguments(host, port, behind_proxy=behind_proxy))
