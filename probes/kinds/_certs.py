"""TLS contexts and certificate facts, shared by the HTTP and TLS kinds.

Contexts are built once per distinct option set and kept: loading the system CA store costs
milliseconds, and a worker runs thousands of checks a minute with a handful of option sets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import ssl
import tempfile
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID, NameOID

from tocsin import outbound

# OpenSSL's X509_V_FLAG_NO_CHECK_TIME: verify the chain but leave dates to the thresholds
NO_CHECK_TIME = 0x200000


def check_pem(name: str, text: str, errors: dict[str, str]) -> None:
    """Whether ``text`` holds at least one PEM certificate (for validate())."""
    if not text:
        return
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        errors.setdefault(name, f"is not a PEM certificate ({exc})")


def check_client_pair(cert_pem: str, key_pem: str, errors: dict[str, str]) -> None:
    if not cert_pem and not key_pem:
        return
    if not cert_pem:
        errors.setdefault("client_cert_pem", "is required with a client key")
        return
    try:
        client_context(cert_pem, key_pem)
    except (ssl.SSLError, ValueError, OSError) as exc:
        errors.setdefault("client_cert_pem", f"cannot be used with its key: {exc}")


@functools.lru_cache(maxsize=256)
def client_context(
    cert_pem: str = "",
    key_pem: str = "",
    *,
    verify: bool = True,
    ca_pem: str = "",
    check_hostname: bool = True,
    check_time: bool = True,
) -> ssl.SSLContext:
    """A client SSLContext for these options (cached: same options, same context)."""
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = check_hostname
        if not check_time:
            context.verify_flags |= NO_CHECK_TIME
    if cert_pem:
        _load_chain(context, cert_pem, key_pem)
    return context


def _load_chain(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    # ssl only loads a certificate chain from files; they live for the call only, mode 0600
    with tempfile.TemporaryDirectory() as folder:
        cert_path = os.path.join(folder, "cert.pem")
        with open(os.open(cert_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(cert_pem)
        key_path = None
        if key_pem:
            key_path = os.path.join(folder, "key.pem")
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
                handle.write(key_pem)
        context.load_cert_chain(cert_path, key_path)


def certificate_facts(der: bytes) -> dict[str, Any]:
    """What a run page shows of a certificate, plus its notAfter as an aware datetime."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        names = [str(v) for v in san.value.get_values_for_type(x509.DNSName)]
        names += [str(v) for v in san.value.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return {
        "subject": cert.subject.rfc4514_string(),
        "common_name": _common_name(cert.subject),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sans": names,
        "serial": format(cert.serial_number, "x"),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "_not_after": cert.not_valid_after_utc,
    }


def _common_name(name: x509.Name) -> str:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else ""


def ms_until(moment: dt.datetime) -> float:
    return round((moment - dt.datetime.now(dt.UTC)).total_seconds() * 1000, 3)


def public(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if not k.startswith("_")}


async def fetch_certificate(host: str, port: int, server_name: str, timeout: float) -> bytes | None:
    """The peer's leaf certificate without verifying it, or None when that fails too.

    Used after a verified handshake failed, so the error can say the notAfter.
    """
    context = client_context(verify=False)
    try:
        async with asyncio.timeout(timeout):
            address = (await outbound.aresolve(host, port, probe=True))[0]
            _, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=server_name or None
            )
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    try:
        sslobj = writer.get_extra_info("ssl_object")
        return sslobj.getpeercert(binary_form=True) if sslobj else None
    finally:
        writer.close()
