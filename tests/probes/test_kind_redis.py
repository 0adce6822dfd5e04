"""The Redis check kind against the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import pytest

from probes import kinds
from probes.kinds.base import InvalidConfig
from tests.probes.conftest import require_service, run_check
from tests.probes.servers import TCPServer, free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


def test_it_pings(redis_url: str) -> None:
    seen = run_check("redis", {"url": redis_url})

    assert seen.reached, seen.error
    assert seen.values["CONNECTED"] is True
    assert seen.values["RESPONSE_TIME"] > 0
    assert seen.values["IP"] == "127.0.0.1"
    assert "VALUE" not in seen.values


def test_it_reads_an_info_field(redis_url: str) -> None:
    seen = run_check(
        "redis", {"url": redis_url, "info_section": "clients", "info_field": "connected_clients"}
    )

    assert seen.reached, seen.error
    assert isinstance(seen.values["VALUE"], int)
    assert seen.values["VALUE"] >= 1


def test_it_reports_a_missing_info_field(redis_url: str) -> None:
    seen = run_check(
        "redis", {"url": redis_url, "info_section": "clients", "info_field": "used_memory"}
    )

    assert not seen.reached
    assert seen.error == "INFO has no field 'used_memory' (section clients)"
    assert seen.values["CONNECTED"] is True


def test_it_reports_a_rejected_password(redis_url: str) -> None:
    seen = run_check("redis", {"url": "redis://nobody:wrong@127.0.0.1:6379/0"})

    assert not seen.reached
    assert seen.error.startswith("authentication failed: invalid username-password pair")


def test_it_reports_connection_refused() -> None:
    port = free_port()

    seen = run_check("redis", {"url": f"redis://127.0.0.1:{port}/0"})

    assert not seen.reached
    assert seen.error == f"connection refused by 127.0.0.1:{port}"
    assert seen.values["CONNECTED"] is False


def test_it_reports_a_server_that_never_answers() -> None:
    silent = TCPServer("silent")
    try:
        seen = run_check("redis", {"url": f"redis://127.0.0.1:{silent.port}/0"}, timeout=0.3)
    finally:
        silent.stop()

    assert not seen.reached
    assert seen.error == "timed out after 0.3 s waiting for PING"


def test_it_names_a_wrong_url() -> None:
    with pytest.raises(InvalidConfig) as caught:
        kinds.get("redis").validate({"url": "http://127.0.0.1:6379"})

    assert caught.value.fields == {"url": "must be a redis://, rediss:// or unix:// URL"}
