"""Shared fixtures: one team with a user per role, an outsider, a superuser, API clients.

Run the suite on the embedded default (SQLite, no Redis) with ``make test``, and against
PostgreSQL + Redis with ``DATABASE_URL``/``REDIS_URL`` set (``make test-postgres``, CI). With
``TOCSIN_REQUIRE_SERVICES=1`` a missing PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.core.cache import cache
from django.core.management import call_command
from django.test.utils import override_settings
from rest_framework.test import APIClient

from tocsin.events import record
from tocsin.events.registry import get_kind
from tocsin.models import Membership, Role, Team
from tocsin.two_factor import signals as two_factor_signals

PASSWORD = "correct-horse-battery-staple"

pytest_plugins = ["tests.live", "tests.log_secrets"]

# --- Outbound guard (issue #14) ---
# The suite's receivers, probe targets, moto and SMTP servers all listen on loopback, which the
# guard refuses by default: allow it for the run (os.environ for the web and worker processes
# the live tests start). tests/tocsin/test_outbound*.py take it away again to see refusals.
TEST_OUTBOUND_ALLOW = ["127.0.0.1/32", "::1/128"]
os.environ.setdefault("TOCSIN_OUTBOUND_ALLOW", ",".join(TEST_OUTBOUND_ALLOW))
settings.TOCSIN_OUTBOUND_ALLOW = os.environ["TOCSIN_OUTBOUND_ALLOW"].split(",")
# SQL checks on SQLite read only files in allowed folders: the suite's are under the temp dir.
os.environ.setdefault("TOCSIN_PROBE_SQLITE_DIRS", tempfile.gettempdir())
settings.TOCSIN_PROBE_SQLITE_DIRS = os.environ["TOCSIN_PROBE_SQLITE_DIRS"].split(",")


def pytest_sessionstart(session: pytest.Session) -> None:
    _forget_stale_sqlite_journals()
    if os.environ.get("TOCSIN_REQUIRE_SERVICES") != "1":
        return
    problems = []
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "tocsin.db.postgresql":
        problems.append(f"DATABASE_URL does not point at PostgreSQL (engine {engine})")
    else:
        import psycopg

        db = settings.DATABASES["default"]
        try:
            psycopg.connect(
                host=db["HOST"],
                port=db["PORT"] or 5432,
                user=db["USER"],
                password=db["PASSWORD"] or None,
                dbname="postgres",
                connect_timeout=5,
            ).close()
        except Exception as exc:
            problems.append(f"PostgreSQL is unreachable: {exc}")
    if not settings.REDIS_URL:
        problems.append("REDIS_URL is not set")
    else:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5).ping()
        except Exception as exc:
            problems.append(f"Redis is unreachable: {exc}")
    if problems:
        pytest.exit("required services missing: " + "; ".join(problems), returncode=3)


def _forget_stale_sqlite_journals() -> None:
    """Remove test databases (and WAL journals) of earlier runs whose process is gone.

    A run killed half-way leaves its file behind; a journal without its database makes SQLite
    fail with "disk I/O error".
    """
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3"):
        return
    for path in Path(settings.VAR_DIR).glob("test_tocsin_*.sqlite3*"):
        pid = path.name.removeprefix("test_tocsin_").split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pytest_configure(config: pytest.Config) -> None:
    # CI and people stop runs with SIGTERM; turn it into KeyboardInterrupt so fixtures tear
    # down and the web and worker processes they started are stopped, not orphaned.
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> None:
    override_settings(PASSWORD_HASHERS=["tests.hashers.FastPBKDF2PasswordHasher"]).enable()


# --- Sign-in protection (issue #14) ---
# In this process, many tests sign in (or send tokens) wrongly on purpose, and schemathesis sends
# invalid credentials by the hundred from one address: no lockout nor delay here unless a test
# asks (tests/tocsin/test_signin_protection*.py; the web servers the live tests start keep the
# real defaults).
SIGNIN_LIMIT_IN_TESTS = 10_000


@pytest.fixture(scope="session", autouse=True)
def _no_spurious_signin_lockouts() -> None:
    override_settings(
        AXES_FAILURE_LIMIT=SIGNIN_LIMIT_IN_TESTS, TOCSIN_LOGIN_DELAY_SECONDS=0
    ).enable()


@pytest.fixture(scope="session", autouse=True)
def _static_files_collected() -> None:
    """Pages reference hashed static names (manifest storage), as in production.

    Collected only when a source file is newer than the manifest, and one test session at a
    time (a lock beside them): collecting rewrites the hashed files, which a session running at
    the same time on the same checkout would find missing for a moment."""
    import fcntl

    from django.contrib.staticfiles.finders import get_finders
    from django.contrib.staticfiles.storage import staticfiles_storage

    root = Path(settings.STATIC_ROOT)
    root.parent.mkdir(parents=True, exist_ok=True)
    manifest = root / staticfiles_storage.manifest_name
    with open(root.parent / "collectstatic.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists():
            collected_at = manifest.stat().st_mtime
            newest = max(
                (
                    Path(storage.path(path)).stat().st_mtime
                    for finder in get_finders()
                    for path, storage in finder.list([])
                ),
                default=0.0,
            )
            if newest <= collected_at:
                return
        call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_namespace() -> None:
    """Forget queued tasks and cache keys left in Redis by an earlier run of the suite."""
    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}*"):
        client.delete(key)
    for key in client.scan_iter(f"*{settings.Q_CLUSTER['name']}*"):
        client.delete(key)


def declared_payload(kind: str, **payload: Any) -> dict[str, Any]:
    """``payload`` plus a placeholder for each key event ``kind`` promises (``record`` checks
    them), for tests that need an event of that kind rather than a particular payload."""
    return dict.fromkeys(get_kind(kind).payload) | payload


def team_test_event(team: Team, **extra: Any) -> Any:
    """A ``team.test`` event about ``team`` (call inside a transaction, as ``record`` wants)."""
    return record(
        "team.test", team=team, subject=team, payload=declared_payload("team.test"), **extra
    )


def make_user(username: str, **extra: Any) -> Any:
    return get_user_model().objects.create_user(
        username=username, email=f"{username}@example.org", password=PASSWORD, **extra
    )


@dataclass
class Crew:
    """A team with one user per role, plus people who must not see it."""

    team: Team
    other_team: Team
    viewer: Any
    responder: Any
    manager: Any
    outsider: Any  # manager of other_team, nothing in team
    admin: Any  # active superuser

    def by_role(self, role: str) -> Any:
        return getattr(self, role)


@pytest.fixture
def crew(db: None) -> Crew:
    team = Team.objects.create(name="Payments")
    other = Team.objects.create(name="Search")
    users = {role: make_user(role) for role in ("viewer", "responder", "manager", "outsider")}
    for role in (Role.VIEWER, Role.RESPONDER, Role.MANAGER):
        Membership.objects.create(team=team, user=users[role], role=role)
    Membership.objects.create(team=other, user=users["outsider"], role=Role.MANAGER)
    admin = get_user_model().objects.create_superuser(
        username="admin", email="admin@example.org", password=PASSWORD
    )
    return Crew(team=team, other_team=other, admin=admin, **users)


@pytest.fixture
def api() -> Any:
    """``api(user)``: an API client with a real session for ``user``; ``api()``: anonymous.

    A session (not force_authenticate) re-loads the user on every request as production does,
    so role changes made by one request are seen by the next. It is written directly rather than
    through ``login()``, whose audit event would show up in "nothing changed" assertions.
    """

    def make(user: Any = None) -> APIClient:
        client = APIClient()
        if user is not None:
            session = import_module(settings.SESSION_ENGINE).SessionStore()
            session[SESSION_KEY] = user._meta.pk.value_to_string(user)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            two_factor_signals.signed_in(session, user)  # what login() stamps in it too
            session.save()
            client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
        return client

    return make


@pytest.fixture
def fresh_throttles() -> Iterator[None]:
    """Anonymous throttling counts in the cache, which outlives a test: start and end clean."""
    cache.clear()
    yield
    cache.clear()
