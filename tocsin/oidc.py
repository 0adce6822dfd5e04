"""OpenID Connect single sign-on: the backend, the two views, and team roles from claims.

Built on mozilla-django-oidc (authorization code flow, state, nonce, PKCE, JWKS), with what it
leaves to its users done here:

- the provider's endpoints come from its discovery document (``TOCSIN_OIDC_ISSUER``), fetched
  on the first sign-in rather than at start-up, so a provider that is down delays no deploy;
  explicit endpoint settings override it;
- the ID token's issuer, audience and expiry are checked (the library checks only signature and
  nonce), and the userinfo ``sub`` must be the ID token's;
- a subject (``iss`` + ``sub``) is bound to one account at its first sign-in
  (``SingleSignOnIdentity``) and matched by that binding from then on; the first time, an
  account is matched by its e-mail address only when the provider says it is verified and the
  account is not bound to another subject of the same provider, and created only when
  ``TOCSIN_OIDC_CREATE_USERS`` allows;
- team roles are mapped from a claim at each sign-in (``TOCSIN_OIDC_TEAM_ROLES``), through the
  same membership services as the team page, so each change is an event and a team keeps a
  manager;
- a failed sign-in (bad state, nonce, signature, provider down) sends the person back to the
  login page with a message, never a 500.

The provider is operator configuration, not user input: requests to it do not go through the
outbound-request guard that user-configured destinations do (docs/security-sso.md).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from tocsin.models import Membership, Role, SingleSignOnIdentity, Team

log = logging.getLogger(__name__)

ROLE_RANK = {Role.VIEWER: 0, Role.RESPONDER: 1, Role.MANAGER: 2}


def enabled() -> bool:
    return bool(getattr(settings, "TOCSIN_OIDC_ENABLED", False))


# --- The provider's endpoints ---------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorization: str
    token: str
    userinfo: str
    jwks: str


_discovered: dict[str, dict[str, Any]] = {}
_discovery_lock = threading.Lock()


def _discover(issuer: str) -> dict[str, Any]:
    """The discovery document, fetched once per process (a failure is not remembered)."""
    with _discovery_lock:
        if issuer not in _discovered:
            response = requests.get(
                f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT
            )
            response.raise_for_status()
            document = response.json()
            if document.get("issuer", "").rstrip("/") != issuer:
                # OpenID Connect Discovery 1.0 §4.3: a mismatch means a wrong or hostile document.
                raise SuspiciousOperation("the discovery document names another issuer")
            _discovered[issuer] = document
        return _discovered[issuer]


def forget_discovery() -> None:
    with _discovery_lock:
        _discovered.clear()


def endpoints() -> Endpoints:
    issuer = settings.TOCSIN_OIDC_ISSUER
    explicit = settings.TOCSIN_OIDC_ENDPOINTS
    found: dict[str, Any] = {}
    if issuer and not all(explicit.values()):
        found = _discover(issuer)
    keys = {
        "authorization": "authorization_endpoint",
        "token": "token_endpoint",
        "userinfo": "userinfo_endpoint",
        "jwks": "jwks_uri",
    }
    values = {name: explicit.get(name) or found.get(key, "") for name, key in keys.items()}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ImproperlyConfigured(f"the OpenID provider gives no {', '.join(missing)} endpoint")
    return Endpoints(issuer=issuer, **values)


# --- The backend ----------------------------------------------------------------------------


class OIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, with endpoints resolved lazily and stricter checks.

    Django builds every backend on every ``authenticate()`` and, for signed-in people, on every
    request (``get_user``): construction does no I/O here, unlike the library's.
    """

    def get_user(self, user_id: Any) -> Any:
        """The signed-in person, while their account is active (Django's ModelBackend ends a
        deactivated account's sessions the same way; the library's backend does not)."""
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = getattr(settings, "OIDC_RP_CLIENT_ID", "")
        self.OIDC_RP_CLIENT_SECRET = getattr(settings, "OIDC_RP_CLIENT_SECRET", "")
        self.OIDC_RP_SIGN_ALGO = getattr(settings, "OIDC_RP_SIGN_ALGO", "RS256")
        self.OIDC_RP_IDP_SIGN_KEY = None

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: endpoints().token)
    OIDC_OP_USER_ENDPOINT = property(lambda self: endpoints().userinfo)
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: endpoints().jwks)

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        # Only the callback view calls with a nonce; a password login carrying ?code=&state= in
        # its URL must not start a token exchange.
        if not enabled() or kwargs.get("nonce") is None or "password" in kwargs:
            return None
        return super().authenticate(request, **kwargs)

    def _verify_jws(self, payload: Any, key: Any) -> dict[str, Any]:
        header = jwt.get_unverified_header(payload)
        algorithm = header.get("alg")
        if algorithm != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation(f"the token is signed with {algorithm!r}")
        issuer = settings.TOCSIN_OIDC_ISSUER
        try:
            return jwt.decode(
                payload,
                key,
                algorithms=[algorithm],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=issuer or None,
                options={"require": ["exp", "iat", "sub", "aud"] + (["iss"] if issuer else [])},
                leeway=60,
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"the ID token was refused: {exc}") from None

    def get_userinfo(self, access_token: str, id_token: str, payload: dict) -> dict[str, Any]:
        """The ID token's claims, completed by the userinfo endpoint's (same subject only)."""
        info = super().get_userinfo(access_token, id_token, payload)
        if info.get("sub") != payload.get("sub"):
            # OpenID Connect Core §5.3.2: otherwise the response must not be used.
            raise SuspiciousOperation("the userinfo response is about another subject")
        return {**payload, **info}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        email, verified = claims.get("email"), claims.get("email_verified")
        return isinstance(email, str) and "@" in email and verified in (True, "true")

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        """The account bound to this subject; before the first binding, the account with the
        verified address that no other subject of this provider is bound to."""
        users = self.UserModel._default_manager
        issuer, subject = _identity(claims)
        bound = users.filter(sso_identities__issuer=issuer, sso_identities__subject=subject)
        if bound.exists():
            return bound
        return users.filter(email__iexact=claims["email"].strip()).exclude(
            sso_identities__issuer=issuer
        )

    def create_user(self, claims: dict[str, Any]) -> Any:
        if not settings.TOCSIN_OIDC_CREATE_USERS:
            return None
        users = self.UserModel._default_manager
        if users.filter(email__iexact=claims["email"].strip()).exists():
            # The address's account is bound to another subject of this provider: a second
            # identity with the same address gets neither that account nor a look-alike.
            log.warning(
                "single sign-on refused: %s is the address of an account bound to another "
                "identity at the provider",
                claims["email"],
            )
            return None
        user = self.UserModel._default_manager.create_user(  # no password: an unusable one
            _free_username(claims),
            email=claims["email"].strip(),
            first_name=str(claims.get("given_name") or "")[:150],
            last_name=str(claims.get("family_name") or "")[:150],
        )
        log.info("created user %s from single sign-on", user.get_username())
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        issuer, subject = _identity(claims)
        SingleSignOnIdentity.objects.get_or_create(
            issuer=issuer, subject=subject, defaults={"user": user}
        )
        if settings.TOCSIN_OIDC_ROLES_CLAIM and user.is_active:
            apply_team_roles(user, claims)
        return user


def _identity(claims: dict[str, Any]) -> tuple[str, str]:
    """(issuer, subject) of the person signing in: the configured issuer (the ID token's
    ``iss`` was checked against it), else the token's own."""
    issuer = settings.TOCSIN_OIDC_ISSUER or str(claims.get("iss") or "")
    return issuer, str(claims["sub"])


def _free_username(claims: dict[str, Any]) -> str:
    User = get_user_model()
    limit = User._meta.get_field(User.USERNAME_FIELD).max_length or 150
    wanted = str(claims.get("preferred_username") or claims["email"].split("@")[0]).strip()
    base = "".join(ch for ch in wanted if ch.isalnum() or ch in "@.+-_")[: limit - 4] or "user"
    candidate, n = base, 1
    while User._default_manager.filter(**{f"{User.USERNAME_FIELD}__iexact": candidate}).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# --- Team roles from claims -----------------------------------------------------------------


class _Provider:
    """The actor of role changes made from claims: the identity provider, not a person.

    Events name it (``actor_label``) without a user id; ``is_authenticated`` only tells the
    event log that this is a real actor, not Django's anonymous user.
    """

    pk = None
    is_authenticated = True

    def get_username(self) -> str:
        return f"single sign-on ({settings.TOCSIN_OIDC_PROVIDER_NAME})"


def wanted_roles(claims: dict[str, Any]) -> dict[str, str]:
    """Team slug → role the claims grant, for every team the mapping names (absent: none)."""
    value = claims.get(settings.TOCSIN_OIDC_ROLES_CLAIM) or []
    if isinstance(value, str):
        groups = {value}
    elif isinstance(value, list):
        groups = {str(group) for group in value}
    else:  # anything else grants nothing
        groups = set()
    wanted: dict[str, str] = {}
    for group, grants in settings.TOCSIN_OIDC_TEAM_ROLES.items():
        if group not in groups:
            continue
        for slug, role in grants:
            if ROLE_RANK[Role(role)] >= ROLE_RANK[Role(wanted.get(slug, Role.VIEWER))]:
                wanted[slug] = role
    return wanted


def apply_team_roles(user: Any, claims: dict[str, Any]) -> None:
    """Add, change or remove the user's memberships of the mapped teams (only those)."""
    from tocsin import services

    mapped = {slug for grants in settings.TOCSIN_OIDC_TEAM_ROLES.values() for slug, _ in grants}
    wanted = wanted_roles(claims)
    teams = {t.slug: t for t in Team.objects.filter(slug__in=mapped)}
    for slug in mapped - teams.keys():
        log.warning("TOCSIN_OIDC_TEAM_ROLES names team %r, which does not exist", slug)
    current = {
        m.team.slug: m
        for m in Membership.objects.filter(user=user, team__in=teams.values()).select_related(
            "team"
        )
    }
    actor = _Provider()
    for slug, team in sorted(teams.items()):
        membership, role = current.get(slug), wanted.get(slug)
        try:
            with transaction.atomic():
                if membership is None and role:
                    services.add_member(team, user, role, actor=actor)
                elif membership is not None and role:
                    services.change_role(membership, role, actor=actor)
                elif membership is not None:
                    services.remove_member(membership, actor=actor)
        except services.ServiceError as exc:
            # The last manager of a team stays one until someone else is promoted.
            log.warning("single sign-on left %s in %s as it was: %s", user, slug, exc.message)


# --- Views ------------------------------------------------------------------------------------

FAILED = "Signing in with {name} did not work. Try again, or ask an administrator."
UNREACHABLE = "{name} cannot be reached just now. Try again, or log in with your password."


def _fail(request: HttpRequest, text: str) -> HttpResponse:
    messages.error(request, text.format(name=settings.TOCSIN_OIDC_PROVIDER_NAME))
    return HttpResponseRedirect(reverse("login"))


class _Guarded(View):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)
        except (SuspiciousOperation, requests.HTTPError) as exc:  # HTTPError: a refused grant
            log.warning("single sign-on refused: %s", exc)
            return _fail(request, FAILED)
        except (requests.RequestException, ValueError, ImproperlyConfigured) as exc:
            log.warning("single sign-on provider failed: %s", exc)
            return _fail(request, UNREACHABLE)


class SignInView(_Guarded, OIDCAuthenticationRequestView):
    """Redirect to the provider. Endpoints are looked up here, not at construction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        View.__init__(self, *args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    OIDC_OP_AUTH_ENDPOINT = property(lambda self: endpoints().authorization)


class CallbackView(_Guarded, OIDCAuthenticationCallbackView):
    def login_failure(self) -> HttpResponse:
        return _fail(self.request, FAILED)

    def login_success(self) -> HttpResponse:
        """Signed in, unless the person has a second factor: then the code step comes first,
        as after a right password (the provider's word replaces the password, not the code)."""
        from tocsin.two_factor import policy
        from tocsin.two_factor.views import PENDING

        if not policy.has_device(self.user):
            return super().login_success()
        self.request.session[PENDING] = {
            "user": self.user.pk,
            "backend": self.user.backend,
            "at": int(time.time()),
            "next": self.success_url,
            "tries": 0,
        }
        return HttpResponseRedirect(reverse("login_code"))


def login_button(next_url: str = "") -> dict[str, Any]:
    """What the login page needs to offer the provider (nothing when SSO is off)."""
    if not enabled():
        return {}
    url = reverse("oidc_authentication_init")
    if next_url:
        from urllib.parse import urlencode

        url = f"{url}?{urlencode({'next': next_url})}"
    return {"url": url, "name": settings.TOCSIN_OIDC_PROVIDER_NAME}
