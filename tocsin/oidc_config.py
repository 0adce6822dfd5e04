"""OpenID Connect settings from the environment (read by tocsin/settings.py; docs/security-sso.md).

Separate from ``tocsin.oidc`` because settings may import nothing that needs Django set up.
A bad value stops the process at start-up, as every setting does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from tocsin.env import env_bool, env_float, env_list, env_str

ROLES = ("viewer", "responder", "manager")
ENDPOINTS = ("authorization", "token", "userinfo", "jwks")


def team_roles(name: str = "TOCSIN_OIDC_TEAM_ROLES") -> dict[str, list[tuple[str, str]]]:
    """``group=team-slug:role,…`` → {group: [(team slug, role), …]}."""
    mapping: dict[str, list[tuple[str, str]]] = {}
    for item in env_list(name, []):
        group, _, grant = item.rpartition("=")
        slug, _, role = grant.partition(":")
        group, slug, role = group.strip(), slug.strip(), role.strip()
        if not group or not slug or role not in ROLES:
            raise ImproperlyConfigured(f"{name}: {item!r} is not group=team-slug:{'|'.join(ROLES)}")
        mapping.setdefault(group, []).append((slug, role))
    return mapping


def oidc_settings(https: bool) -> dict[str, Any]:
    """Tocsin's ``TOCSIN_OIDC_*`` settings and, when enabled, mozilla-django-oidc's ``OIDC_*``."""
    found: dict[str, Any] = {
        "TOCSIN_OIDC_CLIENT_ID": env_str("TOCSIN_OIDC_CLIENT_ID"),
        "TOCSIN_OIDC_ISSUER": env_str("TOCSIN_OIDC_ISSUER").rstrip("/"),
        "TOCSIN_OIDC_ENDPOINTS": {
            name: env_str(f"TOCSIN_OIDC_{name.upper()}_ENDPOINT") for name in ENDPOINTS
        },
        "TOCSIN_OIDC_PROVIDER_NAME": env_str("TOCSIN_OIDC_PROVIDER_NAME", "SSO"),
        "TOCSIN_OIDC_CREATE_USERS": env_bool("TOCSIN_OIDC_CREATE_USERS", False),
        "TOCSIN_OIDC_ROLES_CLAIM": env_str("TOCSIN_OIDC_ROLES_CLAIM"),
        "TOCSIN_OIDC_TEAM_ROLES": team_roles(),
    }
    enabled = found["TOCSIN_OIDC_ENABLED"] = bool(found["TOCSIN_OIDC_CLIENT_ID"])
    if found["TOCSIN_OIDC_TEAM_ROLES"] and not found["TOCSIN_OIDC_ROLES_CLAIM"]:
        raise ImproperlyConfigured(
            "TOCSIN_OIDC_TEAM_ROLES needs TOCSIN_OIDC_ROLES_CLAIM (e.g. groups)"
        )
    if not enabled:
        return found
    issuer, endpoints = found["TOCSIN_OIDC_ISSUER"], found["TOCSIN_OIDC_ENDPOINTS"]
    if not issuer and not all(endpoints.values()):
        raise ImproperlyConfigured(
            "TOCSIN_OIDC_CLIENT_ID needs TOCSIN_OIDC_ISSUER or all four TOCSIN_OIDC_*_ENDPOINT"
        )
    for url in [issuer, *endpoints.values()]:
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ImproperlyConfigured(f"OpenID Connect: {url!r} is not an http(s) URL")
    return {
        **found,
        # mozilla-django-oidc's own settings (the endpoints are resolved by tocsin.oidc).
        "OIDC_RP_CLIENT_ID": found["TOCSIN_OIDC_CLIENT_ID"],
        "OIDC_RP_CLIENT_SECRET": env_str("TOCSIN_OIDC_CLIENT_SECRET"),
        "OIDC_RP_SIGN_ALGO": env_str("TOCSIN_OIDC_SIGN_ALGO", "RS256"),
        "OIDC_RP_SCOPES": env_str("TOCSIN_OIDC_SCOPES", "openid email profile"),
        "OIDC_CREATE_USER": found["TOCSIN_OIDC_CREATE_USERS"],
        "OIDC_USE_PKCE": True,
        "OIDC_TIMEOUT": env_float("TOCSIN_OIDC_TIMEOUT", 10, minimum=1),
        "OIDC_REDIRECT_REQUIRE_HTTPS": https,
    }
