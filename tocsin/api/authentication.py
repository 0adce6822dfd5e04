"""Per-user API tokens: ``Authorization: Bearer tcs_…``.

A refused token answers 401 with the reason (expired, revoked, unknown, owner deactivated):
whoever holds the token already holds the secret, so naming the reason leaks nothing and saves
an operator from guessing why a script stopped working.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from tocsin.models import ApiToken, hash_token
from tocsin.security import signin

USAGE = "send 'Authorization: Bearer <token>' with a token from /api/v1/tokens/"


class ApiTokenAuthentication(authentication.BaseAuthentication):
    # "Token" too, because that is what DRF's own TokenAuthentication taught many clients.
    keywords = (b"bearer", b"token")

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None  # not ours: let session authentication (or anonymity) decide
        # A locked address may use no token (tocsin.security.signin); a refused one counts.
        signin.refuse_locked_address(request._request)
        try:
            return self._authenticate(parts)
        except exceptions.AuthenticationFailed:
            signin.api_token_failed(request._request)
            raise

    def _authenticate(self, parts: list[bytes]) -> tuple[Any, ApiToken]:
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                f"malformed Authorization header; {USAGE}", code="malformed_authorization"
            )
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "invalid API token", code="invalid_token"
            ) from None
        token = ApiToken.authenticate(raw)
        if token is None:
            raise self._refusal(raw)
        return token.user, token

    def _refusal(self, raw: str) -> exceptions.AuthenticationFailed:
        """Why a token was refused; only runs on the failure path, so the extra query is free."""
        token = ApiToken.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
        if token is None:
            return exceptions.AuthenticationFailed("invalid API token", code="invalid_token")
        if token.revoked_at is not None:
            return exceptions.AuthenticationFailed(
                f"this API token ({token.prefix}…) was revoked", code="token_revoked"
            )
        if not token.user.is_active:
            return exceptions.AuthenticationFailed(
                "the account that owns this API token is deactivated", code="user_inactive"
            )
        return exceptions.AuthenticationFailed(
            f"this API token ({token.prefix}…) expired at "
            f"{token.expires_at.isoformat() if token.expires_at else 'an unknown time'}",
            code="token_expired",
        )

    def authenticate_header(self, request: Request) -> str:
        # Its presence makes DRF answer 401 (not 403) to anonymous and badly authenticated calls.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the token scheme in the OpenAPI schema (and Swagger UI's Authorize button)."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tcs_…",
            "description": "A personal API token created with POST /api/v1/tokens/.",
        }
