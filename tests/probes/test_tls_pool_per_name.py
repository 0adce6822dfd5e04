"""A connection opened for one host name never carries a request for another name on the same
address: the outbound guard connects to checked addresses, so pools are kept per name, or a
check of b.example would ride a.example's TLS session and never see its own certificate."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from probes.kinds._certs import client_context
from tests.probes.conftest import _serve
from tocsin.outbound import AsyncGuardedTransport


def test_a_second_name_on_the_same_address_gets_its_own_certificate_check(pki) -> None:
    server = _serve(issued=pki.ca.issue(("localhost",)))  # valid for the name, not the address
    try:
        port = server.server_address[1]

        async def both() -> tuple[int, Exception | None]:
            transport = AsyncGuardedTransport(
                probe=True, family=socket.AF_INET, verify=client_context(ca_pem=pki.ca.cert_pem)
            )
            async with httpx.AsyncClient(transport=transport) as client:
                first = await client.get(f"https://localhost:{port}/ok")
                try:
                    await client.get(f"https://127.0.0.1:{port}/ok")
                except httpx.ConnectError as error:
                    return first.status_code, error
                return first.status_code, None

        status, error = asyncio.run(both())
    finally:
        server.stop()
    assert status == 200
    assert error is not None and "certificate" in str(error).lower()


@pytest.fixture(autouse=True)
def _loopback_allowed(settings) -> None:
    settings.TOCSIN_PROBE_ALLOW = ["127.0.0.1/32"]
