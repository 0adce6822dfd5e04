"""DNS checks: one query of a record type to a chosen nameserver, its rcode and answers.

Queried directly (dnspython's asyncio query, UDP with a TCP retry when truncated) rather than
through a caching stub resolver, so the check sees what that nameserver says now. An answer
of NXDOMAIN or SERVFAIL is still an answer (reached): whether it is right is the conditions'
call ([DNS_RCODE] == NOERROR by default, or == NXDOMAIN for a name that must not exist).
"""

from __future__ import annotations

import time
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename

from probes.kinds._support import Fields, describe_network_error, elapsed_ms, hostport, is_ip
from probes.kinds.base import Observation, excerpt
from tocsin import outbound

KIND = "dns"
LABEL = "DNS"
PLACEHOLDERS = ("DNS_RCODE", "BODY", "VALUE", "RESPONSE_TIME")
DEFAULT_CONDITIONS = ["[DNS_RCODE] == NOERROR"]

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR", "CAA")


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field."""
    f = Fields(config)
    name = f.text("name", required=True)
    if name:
        try:
            dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            f.error("name", f"is not a domain name ({exc})")
    record_type = f.choice("record_type", RECORD_TYPES, "A")
    if record_type == "PTR" and name and not is_ip(name) and "arpa" not in name.lower():
        f.error("name", "must be an IP address or an in-addr.arpa/ip6.arpa name for PTR")
    server = f.text("nameserver")
    if server:
        try:
            parse_nameserver(server)
        except ValueError as exc:
            f.error("nameserver", str(exc))
    return f.done()


def parse_nameserver(text: str) -> tuple[str, int]:
    """ "1.1.1.1", "127.0.0.1:5353", "[::1]:53" or "::1" → (address, port)."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = _port(rest.removeprefix(":"))
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text)
    if not is_ip(host):
        raise ValueError("must be an IP address, optionally with :port ([v6]:port for IPv6)")
    return host, port


def _port(text: str) -> int:
    if not text.isdecimal() or not 0 < int(text) < 65536:
        raise ValueError(f"has a bad port {text!r}")
    return int(text)


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    name = config["name"]
    record_type = config.get("record_type", "A")
    if record_type == "PTR" and is_ip(name):
        qname = dns.reversename.from_address(name)
    else:
        qname = dns.name.from_text(name)
    if config.get("nameserver"):
        host, port = parse_nameserver(config["nameserver"])
        try:  # a nameserver the check names is a destination like any other (the system's is not)
            outbound.resolve(str(host), port, probe=True)
        except outbound.Refused as exc:
            return Observation(False, str(exc), {"RESPONSE_TIME": 0.0}, {"total": 0.0})
    else:
        host, port = dns.resolver.get_default_resolver().nameservers[0], 53
    where = hostport(str(host), port)
    details: dict[str, Any] = {"nameserver": where, "query": f"{qname} {record_type}"}
    query = dns.message.make_query(qname, record_type)
    started = time.perf_counter()
    try:
        response, used_tcp = await dns.asyncquery.udp_with_fallback(
            query, str(host), timeout=timeout, port=port
        )
    except dns.exception.Timeout:
        took = elapsed_ms(started)
        return Observation(
            False,
            f"timed out after {timeout:g} s waiting for nameserver {where}",
            {"RESPONSE_TIME": took},
            {"total": took},
            details=details,
        )
    except (OSError, dns.exception.DNSException) as exc:
        took = elapsed_ms(started)
        error = describe_network_error(exc, str(host), port) or f"nameserver {where}: {exc}"
        return Observation(False, error, {"RESPONSE_TIME": took}, {"total": took}, details=details)
    took = elapsed_ms(started)
    rdtype = dns.rdatatype.from_text(record_type)
    answers = [rd.to_text() for rrset in response.answer if rrset.rdtype == rdtype for rd in rrset]
    if not answers:
        answers = [rd.to_text() for rrset in response.answer for rd in rrset]
    # sorted: round-robin servers shuffle their answers, and conditions must not flap on it
    answers.sort()
    body = "\n".join(answers)
    details.update(
        answers=answers,
        ttl=min((rrset.ttl for rrset in response.answer), default=None),
        authoritative=bool(response.flags & dns.flags.AA),
        tcp=used_tcp,
    )
    values = {
        "DNS_RCODE": dns.rcode.to_text(response.rcode()),
        "BODY": body,
        "VALUE": answers[0] if answers else None,
        "RESPONSE_TIME": took,
    }
    return Observation(True, "", values, {"total": took}, excerpt(body), details)
