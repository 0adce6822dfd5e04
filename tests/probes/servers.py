"""Real servers for the check-kind tests, on 127.0.0.1 and free ports, in threads.

A test PKI (a CA, a valid, an expired and a wrong-host server certificate, a client
certificate), an HTTP(S) server with the endpoints the HTTP tests need, a TCP listener that
greets and echoes, and a DNS server answering from a dict. Nothing here is a mock: the kinds
talk to these over real sockets exactly as they talk to production targets.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# ---- test PKI ----------------------------------------------------------------------------


@dataclass
class Issued:
    cert_pem: str
    key_pem: str


@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_pem: str

    @classmethod
    def create(cls, name: str = "Tocsin Test CA") -> CA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key, cert.public_bytes(serialization.Encoding.PEM).decode())

    def issue(
        self,
        names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"),
        *,
        days: float = 90,
        expired: bool = False,
        client: bool = False,
        common_name: str = "",
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        if expired:
            not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=2)
        else:
            not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=days)
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cn = common_name or (names[0] if names else "client")
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return Issued(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem)


def server_context(issued: Issued, *, client_ca: CA | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert.write_text(issued.cert_pem)
        key.write_text(issued.key_pem)
        context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.cert_pem)
    return context


# ---- HTTP(S) -----------------------------------------------------------------------------

BASIC_USER, BASIC_PASSWORD, BEARER_TOKEN = "probe", "s3cret", "token-123"
BIG_BODY_SIZE = 3_000_000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = path.strip("/").split("/")
        head, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if head == "ok":
            self._send(200, b"ok", "text/plain")
        elif head == "json":
            self._send(200, json.dumps({"status": "UP", "count": 42, "items": [1, 2]}))
        elif head == "status":
            self._send(int(arg), f"status {arg}".encode(), "text/plain")
        elif head == "redirect":
            self._send(302, b"", "text/plain", {"Location": "/ok"})
        elif head == "loop":
            self._send(302, b"", "text/plain", {"Location": "/loop"})
        elif head == "slow":
            time.sleep(float(arg or 2))
            self._send(200, b"slow", "text/plain")
        elif head == "trickle":
            self._trickle()
        elif head == "echo":
            echoed = {
                "method": self.command,
                "path": self.path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(echoed))
        elif head == "basic":
            expected = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
            ok = self.headers.get("authorization") == f"Basic {expected}"
            self._send(200 if ok else 401, b"basic", "text/plain")
        elif head == "bearer":
            ok = self.headers.get("authorization") == f"Bearer {BEARER_TOKEN}"
            self._send(200 if ok else 401, b"bearer", "text/plain")
        elif head == "big":
            self._send(200, b"x" * BIG_BODY_SIZE, "text/plain")
        elif head == "set-cookie":
            self._send(200, b"set", "text/plain", {"Set-Cookie": "session=abc; Path=/"})
        elif head == "peer-cert":
            cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else {}
            subject = dict(x[0] for x in (cert or {}).get("subject", ()))
            self._send(200, json.dumps({"client": subject.get("commonName", "")}))
        else:
            self._send(404, b"not found", "text/plain")

    def _send(
        self,
        status: int,
        body: bytes | str,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test", "one")
        self.send_header("X-Test", "two")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            self.wfile.write(b".")
            self.wfile.flush()
            time.sleep(0.1)


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", context: ssl.SSLContext | None = None):
        self.context = context
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), Handler)
        self.host = host
        self.port = self.server_address[1]
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        ).start()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is not None:
            # the handshake in the request's own thread: a failing client blocks nobody
            try:
                request.settimeout(5)
                request.do_handshake()
            except (ssl.SSLError, OSError):
                # as a TLS server does: the alert, then FIN, and only later the close, so the
                # client reads the alert instead of a reset
                with contextlib.suppress(OSError):
                    request.shutdown(socket.SHUT_WR)
                    time.sleep(0.5)
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up mid-response (timeouts, bounded reads) are expected

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# ---- TCP ---------------------------------------------------------------------------------

GREETING = b"HELLO tocsin\r\n"


class _TCPHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        mode = self.server.mode  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            if mode == "silent":
                sock.recv(1024)
                time.sleep(3)
                return
            if mode == "close":
                return
            sock.sendall(GREETING)
            while data := sock.recv(1024):
                sock.sendall(b"ECHO " + data)
        except OSError:
            pass


class TCPServer(socketserver.ThreadingTCPServer):
    """``mode``: "echo" greets then echoes, "silent" reads and says nothing, "close" hangs up."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, mode: str = "echo"):
        self.mode = mode
        super().__init__(("127.0.0.1", 0), _TCPHandler)
        self.port = self.server_address[1]
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        ).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def free_port() -> int:
    """A port nothing listens on (connecting to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- DNS ---------------------------------------------------------------------------------


class DNSServer:
    """Answers UDP queries from ``records`` {(name, type): [rdata text]}.

    Unknown names get NXDOMAIN; names in ``servfail`` get SERVFAIL; names in ``silent`` get no
    answer at all (a resolver timeout).
    """

    def __init__(
        self,
        records: dict[tuple[str, str], list[str]],
        *,
        servfail: tuple[str, ...] = (),
        silent: tuple[str, ...] = (),
    ):
        self.records = {(n.rstrip(".").lower(), t.upper()): v for (n, t), v in records.items()}
        self.servfail = {n.rstrip(".").lower() for n in servfail}
        self.silent = {n.rstrip(".").lower() for n in silent}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)

    def _answer(self, data: bytes) -> bytes | None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, kind) in self.records:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", kind, self.records[(name, kind)])
            )
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def stop(self) -> None:
        self._stopped.set()
        self.sock.close()


# ---- journeys ----------------------------------------------------------------------------

JOURNEY_USER, JOURNEY_PASSWORD = "alice", "correct-horse"
JOURNEY_TOKEN, JOURNEY_SESSION = "tok-9f8e7d6c5b", "sess-1a2b3c4d5e"
JOURNEY_CSRF, JOURNEY_REQUEST_ID = "csrf-77aa88bb", "req-4242"


class JourneyHandler(Handler):
    """A small shop: a JSON login that hands out a token, a form login that sets a session
    cookie, APIs that demand one or the other, a page with a CSRF field; else ``Handler``'s."""

    def _route(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/login":
            self._login()
        elif path == "/form-login":
            self._form_login()
        elif path == "/api/orders":
            ok = self.headers.get("authorization") == f"Bearer {JOURNEY_TOKEN}"
            body = {"orders": [{"id": 1}, {"id": 2}], "owner": 7} if ok else {"error": "no"}
            self._send(200 if ok else 401, json.dumps(body))
        elif path == "/me":
            cookie = self.headers.get("cookie") or ""
            ok = f"sid={JOURNEY_SESSION}" in cookie.replace(" ", "").split(";")
            body = {"user": JOURNEY_USER, "cookie": cookie} if ok else {"error": "log in"}
            self._send(200 if ok else 401, json.dumps(body))
        elif path == "/page":
            page = f'<form><input type="hidden" name="csrf" value="{JOURNEY_CSRF}"></form>'
            self._send(200, page, "text/html", {"X-Request-Id": JOURNEY_REQUEST_ID})
        else:
            super()._route()

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _login(self) -> None:
        try:
            sent = json.loads(self._body() or b"{}")
        except ValueError:
            sent = {}
        if sent.get("username") == JOURNEY_USER and sent.get("password") == JOURNEY_PASSWORD:
            self._send(200, json.dumps({"token": JOURNEY_TOKEN, "user": {"id": 7}}))
        else:
            self._send(401, json.dumps({"error": "bad credentials"}))

    def _form_login(self) -> None:
        from urllib.parse import parse_qs

        sent = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
        if sent.get("user") != JOURNEY_USER or sent.get("password") != JOURNEY_PASSWORD:
            self._send(401, b"bad credentials", "text/plain")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "7")
        self.send_header("Set-Cookie", f"sid={JOURNEY_SESSION}; Path=/; HttpOnly")
        self.send_header("Set-Cookie", "theme=dark; Expires=Wed, 21 Oct 2099 07:28:00 GMT")
        self.end_headers()
        self.wfile.write(b"welcome")


class JourneyServer(HTTPServer):
    """``HTTPServer`` answering with ``JourneyHandler``."""

    def __init__(self, host: str = "127.0.0.1"):
        super().__init__(host)
        self.RequestHandlerClass = JourneyHandler
