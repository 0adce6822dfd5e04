"""A small, real OpenID Connect provider on 127.0.0.1 for the single sign-on tests.

It speaks the authorization code flow over HTTP as a real provider does: a discovery document,
an authorization endpoint that signs in a configured person at once (no consent page) and
redirects back with a code, a token endpoint that checks the client's secret, the redirect URI
and the PKCE verifier and issues an RS256-signed ID token, a JWKS document and a userinfo
endpoint. Tests change ``person`` (the claims) and the misbehaviours below between sign-ins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    claims: dict[str, Any]


@dataclass
class Provider:
    client_id: str = "tocsin"
    client_secret: str = "s3cret-for-tests"
    person: dict[str, Any] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    kid: str = "test-key-1"
    # Misbehaviours: sign with another key (same kid), put another nonce, name another audience.
    sign_with: rsa.RSAPrivateKey | None = None
    nonce_override: str | None = None
    audience_override: str | None = None
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def issuer(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience_override or grant.client_id,
            "iat": now,
            "exp": now + 300,
            **{k: v for k, v in grant.claims.items() if k in ("sub", "email", "email_verified")},
        }
        nonce = self.nonce_override or grant.nonce
        if nonce is not None:
            claims["nonce"] = nonce
        key = self.sign_with or self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def start(self) -> Provider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any = None, headers: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                provider.requests.append(f"GET {url.path}")
                if url.path == "/.well-known/openid-configuration":
                    return self.reply(200, provider.discovery())
                if url.path == "/jwks":
                    return self.reply(200, provider.jwks())
                if url.path == "/authorize":
                    return self.authorize(query)
                if url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    claims = provider.tokens.get(token)
                    if claims is None:
                        return self.reply(401, {"error": "invalid_token"})
                    return self.reply(200, claims)
                return self.reply(404, {"error": "not_found"})

            def authorize(self, query: dict[str, str]) -> None:
                if (
                    query.get("client_id") != provider.client_id
                    or query.get("response_type") != "code"
                    or "openid" not in query.get("scope", "").split()
                ):
                    return self.reply(400, {"error": "invalid_request"})
                code = secrets.token_urlsafe(16)
                provider.codes[code] = Grant(
                    client_id=query["client_id"],
                    redirect_uri=query["redirect_uri"],
                    nonce=query.get("nonce"),
                    code_challenge=query.get("code_challenge"),
                    claims=dict(provider.person),
                )
                back = (
                    f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                )
                self.reply(302, headers={"Location": back})

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                provider.requests.append(f"POST {url.path}")
                if url.path != "/token":
                    return self.reply(404, {"error": "not_found"})
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                grant = provider.codes.pop(form.get("code", ""), None)
                if (
                    form.get("client_id") != provider.client_id
                    or form.get("client_secret") != provider.client_secret
                    or form.get("grant_type") != "authorization_code"
                    or grant is None
                    or grant.redirect_uri != form.get("redirect_uri")
                ):
                    return self.reply(400, {"error": "invalid_grant"})
                if grant.code_challenge is not None:
                    digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != (
                        grant.code_challenge
                    ):
                        return self.reply(400, {"error": "invalid_grant"})
                access = secrets.token_urlsafe(24)
                provider.tokens[access] = grant.claims
                self.reply(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "id_token": provider.id_token(grant),
                    },
                    {"Cache-Control": "no-store"},
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
