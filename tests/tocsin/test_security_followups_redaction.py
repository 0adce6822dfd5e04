"""Secrets in exception text are redacted like secrets in log messages (a real logger, handler
and formatter, configured as tocsin/settings.py configures the console)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from tocsin.redaction import RedactSecrets

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"  # settings.LOGGING's "plain"
TOKEN = "tok-9f3c1d7e5b"
INGEST_KEY = "ingkey-51a8e2c0"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("tests.security_followups.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def failing_delivery() -> None:
    try:
        raise ConnectionError(f"https://hooks.example.org/post?token={TOKEN} refused")
    except ConnectionError as exc:
        raise RuntimeError(f"delivery to /ingest/grafana/{INGEST_KEY}/ failed") from exc


def test_a_logged_exception_leaves_without_its_secrets(logged):
    logger, stream = logged
    try:
        failing_delivery()
    except RuntimeError:
        logger.exception("webhook %s failed", f"/ping/{INGEST_KEY}")
    out = stream.getvalue()
    assert TOKEN not in out and INGEST_KEY not in out
    # Still a whole traceback: both exceptions, their types and where they were raised.
    assert "webhook /ping/[redacted] failed" in out
    assert "Traceback (most recent call last)" in out and "in failing_delivery" in out
    assert "ConnectionError: https://hooks.example.org/post?token=[redacted] refused" in out
    assert "RuntimeError: delivery to /ingest/grafana/[redacted] failed" in out


def test_a_traceback_formatted_by_an_earlier_handler_is_redacted_too(logged):
    logger, stream = logged
    earlier = io.StringIO()
    unfiltered = logging.StreamHandler(earlier)  # formats first and caches record.exc_text
    logger.handlers.insert(0, unfiltered)
    try:
        failing_delivery()
    except RuntimeError:
        logger.exception("delivery failed")
    logger.removeHandler(unfiltered)
    assert TOKEN in earlier.getvalue()  # (that handler has no filter)
    out = stream.getvalue()
    assert TOKEN not in out and INGEST_KEY not in out and "RuntimeError" in out


def test_the_redacted_record_carries_no_exception_that_would_be_formatted_again(logged):
    logger, _ = logged
    records: list[logging.LogRecord] = []
    keeper = logging.Handler()
    keeper.emit = records.append  # after the filtering handler: sees the record it left
    logger.addHandler(keeper)
    try:
        failing_delivery()
    except RuntimeError:
        logger.exception("delivery failed")
    logger.removeHandler(keeper)
    [record] = records
    assert record.exc_info is None and TOKEN not in record.exc_text
    assert TOKEN not in logging.Formatter(FORMAT).format(record)


def test_exceptions_without_secrets_are_left_as_they_are(logged):
    logger, stream = logged
    records: list[logging.LogRecord] = []
    keeper = logging.Handler()
    keeper.emit = records.append
    logger.addHandler(keeper)
    try:
        raise ValueError("no secret here")
    except ValueError:
        logger.exception("plain failure")
    logger.removeHandler(keeper)
    assert records[0].exc_info is not None
    assert "ValueError: no secret here" in stream.getvalue()
