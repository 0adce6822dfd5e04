"""Tocsin settings: everything an operator changes comes from environment variables.

Two first-class modes:
- embedded (default): SQLite under ``var/``, no Redis; one ``make run`` starts web + worker.
- production: ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``; several web and worker processes.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import available_timezones

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from tocsin import db_pool
from tocsin.env import env_bool, env_float, env_int, env_list, env_networks, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TOCSIN_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = not DATABASE_URL


def _secret_key() -> str:
    """SECRET_KEY from the environment; in the embedded default, generated once under var/."""
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not (EMBEDDED or DEBUG):
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DATABASE_URL is set and DEBUG is off "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

TOCSIN_BASE_URL = env_str("TOCSIN_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
_base = urlsplit(TOCSIN_BASE_URL)
if _base.scheme not in {"http", "https"} or not _base.hostname:
    raise ImproperlyConfigured(f"TOCSIN_BASE_URL={TOCSIN_BASE_URL!r} must be an http(s) URL")
HTTPS = _base.scheme == "https"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", _base.hostname])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [f"{_base.scheme}://{_base.netloc}"])

INSTALLED_APPS = [
    "daphne",
    "tocsin.apps.TocsinAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Two-factor sign-in (tocsin.two_factor): TOTP devices and one-time recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_q",
    "channels",
    "tocsin",
    "monitoring",
    "incidents",
    "probes",
    "backups",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tocsin.csp.ContentSecurityPolicyMiddleware",  # every response, static files too (#14)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A status page's own domain (Host header) is served its public pages at /.
    "incidents.statuspages.domains.CustomDomainMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Two-factor and session lifetimes (docs/security-accounts.md): which device verified the
    # session; after messages: idle and absolute session limits, then "enrol first".
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tocsin.two_factor.middleware.SessionLifetimeMiddleware",
    "tocsin.two_factor.middleware.TwoFactorPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "tocsin.urls"
ASGI_APPLICATION = "tocsin.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tocsin.context_processors.tocsin",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
if EMBEDDED:
    _sqlite_path = VAR_DIR / "tocsin.sqlite3"
    DATABASES = {"default": dj_database_url.parse(f"sqlite:///{_sqlite_path}")}
else:
    # CONN_MAX_AGE stays 0 on every backend: under ASGI each request runs in a fresh thread,
    # and a persistent connection would outlive its thread until garbage collection, so the
    # server would run out of connections (issue 9). PostgreSQL gets a pool instead (below).
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend with today's parameter limit: a batch insert stays one statement.
    DATABASES["default"]["ENGINE"] = "tocsin.db.sqlite3"
    # Web and worker are separate processes writing one file: WAL lets readers and the writer
    # proceed together, IMMEDIATE takes the write lock up front so two writers queue on the busy
    # timeout instead of failing with "database is locked" half-way through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The test database must be a file: live tests start real web and worker processes on it.
    # One file per test run (by process id), so processes left over from an interrupted run
    # can never touch the database of the next one.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("TOCSIN_TEST_DB_NAME", str(VAR_DIR / f"test_tocsin_{os.getpid()}.sqlite3"))
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's PostgreSQL backend with a pool that recovers at once from a server restart.
    DATABASES["default"]["ENGINE"] = "tocsin.db.postgresql"
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection it hands out
    # One psycopg pool per process (TOCSIN_DB_POOL_MAX connections at most): see tocsin.db_pool.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = db_pool.pool_options()
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = db_pool.prepare_threshold()
    db_pool.register_fork_hook()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, task broker -------------------------------------------------
REDIS_PREFIX = env_str("TOCSIN_REDIS_PREFIX", "tocsin")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}:asgi"},
        },
        # The live relay's commit notices (tocsin.live.publish): plain pub/sub, so a notice is
        # never queued for a web process that is gone, and subscriptions survive a Redis restart.
        "live": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}:live"},
        },
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

Q_CLUSTER = {
    "name": REDIS_PREFIX,
    "workers": env_int("TOCSIN_WORKERS", 2, minimum=1),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.2,
    "label": "Tasks",
    # Every worker runs the scheduler by default; set TOCSIN_SCHEDULER=0 on workers that
    # should only take queued work.
    "scheduler": env_bool("TOCSIN_SCHEDULER", True),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth and sessions ------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Username or e-mail address, on the UI and admin logins alike (tocsin/auth.py).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "tocsin.auth.EmailBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# SESSION_COOKIE_AGE: see "Accounts: two-factor and sessions" below.

# Behind a TLS-terminating proxy, it tells us the original scheme in this header, and the
# client's address in X-Forwarded-For (`manage.py web` passes daphne --proxy-headers only then:
# without a proxy, anyone could claim any address).
TOCSIN_BEHIND_PROXY = env_bool("TOCSIN_BEHIND_PROXY", False)
if TOCSIN_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = env_bool("TOCSIN_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = env_int("TOCSIN_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env_bool("TOCSIN_HSTS_PRELOAD", False)
# Joining the browsers' HSTS preload list is a one-way commitment for the whole domain: an
# operator opts in with TOCSIN_HSTS_PRELOAD, so its absence is not a warning.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_REDIRECT_EXEMPT = [r"^health"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Accounts: two-factor and sessions (issue #14) --------------------------------------------
# docs/security-accounts.md. Staff (is_staff or superuser) must enrol a TOTP device before using
# Tocsin when this is on; teams can require it of their members (Team.require_two_factor).
TOCSIN_2FA_REQUIRED_FOR_STAFF = env_bool("TOCSIN_2FA_REQUIRED_FOR_STAFF", False)
# A session ends after this long without a request (idle) and this long after sign-in (absolute).
TOCSIN_SESSION_IDLE_MINUTES = env_int("TOCSIN_SESSION_IDLE_MINUTES", 12 * 60, minimum=5)
TOCSIN_SESSION_MAX_HOURS = env_int("TOCSIN_SESSION_MAX_HOURS", 7 * 24, minimum=1)
SESSION_COOKIE_AGE = TOCSIN_SESSION_MAX_HOURS * 3600
OTP_TOTP_ISSUER = "Tocsin"
# The device admin (superusers only: it deletes a lost device) never shows a device's secret.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- OpenID Connect single sign-on (issue #14) ---
# docs/security-sso.md; TOCSIN_OIDC_* read and checked by tocsin/oidc_config.py. Off (no button,
# no backend, no URLs) unless TOCSIN_OIDC_CLIENT_ID is set.
from tocsin.oidc_config import oidc_settings  # noqa: E402

globals().update(oidc_settings(HTTPS))
if TOCSIN_OIDC_ENABLED:  # noqa: F821 (set just above)
    AUTHENTICATION_BACKENDS.append("tocsin.oidc.OIDCBackend")

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Tests and DEBUG read static files straight from the source folders.
WHITENOISE_USE_FINDERS = DEBUG

# --- Email ------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Tocsin <tocsin@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tocsin.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "tocsin.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tocsin.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "tocsin.api.parsers.StrictMultiPartParser",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": "60/min"},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tocsin API",
    "DESCRIPTION": "Alerts, incidents, on-call, probes, SLOs and backups.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "kind" field; give each enum its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "IntegrationKindEnum": "monitoring.models.catalog.IntegrationKind.choices",
        "ChannelKindEnum": "incidents.notifications.models.ChannelKind.choices",
        "ContactMethodKindEnum": "incidents.notifications.api.CONTACT_METHOD_KINDS",
        "PriorityEnum": "incidents.lifecycle.models.Priority.choices",
        "PostmortemStatusEnum": "incidents.postmortems.models.PostmortemStatus.choices",
        "ActionItemStatusEnum": "incidents.postmortems.models.ActionItemStatus.choices",
        "PublicIncidentStatusEnum": "incidents.statuspages.models.PublicIncidentStatus.choices",
        "ComponentStatusEnum": "incidents.statuspages.models.ComponentStatus.choices",
    },
}

# --- Tocsin -----------------------------------------------------------------------------------
# Without Redis: how often each web process looks for new events to push to browsers (seconds).
TOCSIN_LIVE_POLL_INTERVAL = env_float("TOCSIN_LIVE_POLL_INTERVAL", 0.1, minimum=0.01)
# With Redis, web processes hear of new events by pub/sub and read the log only then; after this
# long without a notice they read it once anyway, in case one was lost (seconds).
TOCSIN_LIVE_SAFETY_INTERVAL = env_float("TOCSIN_LIVE_SAFETY_INTERVAL", 10.0, minimum=0.1)
# Events a reconnecting browser may replay before it is told to reload instead.
TOCSIN_LIVE_REPLAY_LIMIT = env_int("TOCSIN_LIVE_REPLAY_LIMIT", 500, minimum=1)
# Largest accepted ingest request body (bytes); larger ones get 413.
TOCSIN_INGEST_MAX_BYTES = env_int("TOCSIN_INGEST_MAX_BYTES", 1024 * 1024, minimum=1024)
# How long each web process remembers which integration an ingest key opens (seconds; 0 = not
# at all). A rotated or revoked key stops working at once (within a second with Redis) all the
# same (monitoring.ingest.key_cache); only if Redis is unreachable then can it work this long.
TOCSIN_INGEST_KEY_CACHE_SECONDS = env_float("TOCSIN_INGEST_KEY_CACHE_SECONDS", 10, minimum=0)
# Batches of alerts one web process writes at the same time (monitoring.ingest.batching). On
# PostgreSQL two: a batch's Python work overlaps the other's wait for the server. SQLite has one
# writer at a time, so a second batch would only wait for the lock.
TOCSIN_INGEST_WRITERS = env_int(
    "TOCSIN_INGEST_WRITERS",
    1 if DATABASES["default"]["ENGINE"] == "tocsin.db.sqlite3" else 2,
    minimum=1,
)
# Key for secrets stored encrypted (notification channel URLs, …); derived from SECRET_KEY when
# unset, so set it before rotating SECRET_KEY or stored secrets become unreadable.
TOCSIN_ENCRYPTION_KEY = env_str("TOCSIN_ENCRYPTION_KEY")
# Backups (backups app): passphrases that encrypt backup repositories, comma-separated. The
# first encrypts new repositories; every one is tried to open an existing one, so a rotation
# puts the new key first, runs `manage.py backups rekey`, then drops the old (docs/backups.md).
TOCSIN_BACKUP_KEYS = env_list("TOCSIN_BACKUP_KEYS", [])
# A running backup renews its plan's lease this often (a third of it); a worker that dies
# stops renewing, and the plan is free again once the lease runs out (seconds).
TOCSIN_BACKUP_LEASE_SECONDS = env_int("TOCSIN_BACKUP_LEASE_SECONDS", 60, minimum=5)
# The longest a backup, verify, drill or restore may run before the worker stops it (seconds).
TOCSIN_BACKUP_TIMEOUT = env_int("TOCSIN_BACKUP_TIMEOUT", 6 * 3600, minimum=60)
# Bearer token that /metrics requires; unset = /metrics is not served.
TOCSIN_METRICS_TOKEN = env_str("TOCSIN_METRICS_TOKEN")
# A worker heartbeat older than this makes /health/ready fail (seconds).
# The worker writes its heartbeat every 5 s (tocsin.duework); a clean stop removes it at once.
TOCSIN_WORKER_STALE_AFTER = env_int("TOCSIN_WORKER_STALE_AFTER", 30, minimum=10)
# Resolved alerts are deleted this many days after their last change, unless an open or recently
# resolved incident still shows them (monitoring.retention); the event log keeps their history.
# 0 keeps every alert.
TOCSIN_ALERT_RETENTION_DAYS = env_int("TOCSIN_ALERT_RETENTION_DAYS", 30, minimum=0)
# Heartbeats: bytes of a ping's body kept (announced in Ping-Body-Limit, as hc-ping.com does),
# and days pings are kept (beyond the 7 days a start is paired with its finish).
TOCSIN_PING_BODY_LIMIT = env_int("TOCSIN_PING_BODY_LIMIT", 100_000, minimum=0)
TOCSIN_PING_RETENTION_DAYS = env_int("TOCSIN_PING_RETENTION_DAYS", 14, minimum=8)
# Synthetic checks: the location this worker probes from (a check may require several), how many
# checks one worker runs at once, and how long raw runs and each rollup level are kept
# (probes.checks.rollups.prune; the tests set them as seconds).
TOCSIN_PROBE_LOCATION = env_str("TOCSIN_PROBE_LOCATION", "default")
TOCSIN_PROBE_CONCURRENCY = env_int("TOCSIN_PROBE_CONCURRENCY", 200, minimum=1)
TOCSIN_CHECK_RESULT_RETENTION = timedelta(
    hours=env_int("TOCSIN_CHECK_RESULT_RETENTION_HOURS", 48, minimum=2)
)
TOCSIN_CHECK_MINUTE_RETENTION = timedelta(
    days=env_int("TOCSIN_CHECK_MINUTE_RETENTION_DAYS", 14, minimum=1)
)
TOCSIN_CHECK_HOUR_RETENTION = timedelta(
    days=env_int("TOCSIN_CHECK_HOUR_RETENTION_DAYS", 90, minimum=2)
)
TOCSIN_CHECK_DAY_RETENTION = timedelta(
    days=env_int("TOCSIN_CHECK_DAY_RETENTION_DAYS", 730, minimum=90)
)
# Monthly SLA reports (docs/sla-reports.md): where months begin and end, and the target of
# services without a probe-availability SLO (percent). Read by incidents.reports.sla.
TOCSIN_SLA_TIME_ZONE = env_str("TOCSIN_SLA_TIME_ZONE", TIME_ZONE)
if TOCSIN_SLA_TIME_ZONE not in available_timezones():
    raise ImproperlyConfigured(f"TOCSIN_SLA_TIME_ZONE={TOCSIN_SLA_TIME_ZONE!r} is no IANA zone")
TOCSIN_SLA_TARGET = env_float("TOCSIN_SLA_TARGET", 99.9, minimum=0)
if TOCSIN_SLA_TARGET > 100:
    raise ImproperlyConfigured(f"TOCSIN_SLA_TARGET={TOCSIN_SLA_TARGET} must be at most 100")

# --- Sign-in protection and client addresses (issue #14) ---
# docs/security-signin.md. The client address is X-Forwarded-For's TOCSIN_PROXY_HOPS-th entry
# from the right when TOCSIN_BEHIND_PROXY is on (one per trusted proxy in front), else the peer.
TOCSIN_PROXY_HOPS = env_int("TOCSIN_PROXY_HOPS", 1, minimum=1)
# Failed sign-ins (UI and admin login, wrong API tokens) per account or per address before both
# are locked for TOCSIN_LOGIN_LOCKOUT_MINUTES; from TOCSIN_LOGIN_DELAY_AFTER failures on, each
# attempt waits TOCSIN_LOGIN_DELAY_SECONDS, doubling per failure, at most ..._DELAY_MAX_SECONDS.
TOCSIN_LOGIN_FAILURE_LIMIT = env_int("TOCSIN_LOGIN_FAILURE_LIMIT", 20, minimum=1)
TOCSIN_LOGIN_LOCKOUT_MINUTES = env_int("TOCSIN_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
TOCSIN_LOGIN_DELAY_AFTER = env_int("TOCSIN_LOGIN_DELAY_AFTER", 5, minimum=1)
TOCSIN_LOGIN_DELAY_SECONDS = env_float("TOCSIN_LOGIN_DELAY_SECONDS", 1.0, minimum=0)
TOCSIN_LOGIN_DELAY_MAX_SECONDS = env_float("TOCSIN_LOGIN_DELAY_MAX_SECONDS", 60.0, minimum=0)
INSTALLED_APPS.append("axes")
AUTHENTICATION_BACKENDS.insert(0, "tocsin.security.signin.SigninBackend")
MIDDLEWARE += ["axes.middleware.AxesMiddleware", "tocsin.security.signin.DelayMiddleware"]
AXES_ENABLED = env_bool("TOCSIN_LOGIN_PROTECTION", True)
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # every web process sees the count
AXES_FAILURE_LIMIT = TOCSIN_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = "tocsin.security.signin.cool_off"
AXES_LOCKOUT_PARAMETERS = "tocsin.security.signin.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "tocsin.security.signin.axes_client_ip"
AXES_USERNAME_CALLABLE = "tocsin.security.signin.signin_username"
AXES_LOCKOUT_CALLABLE = "tocsin.security.signin.lockout_response"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lockout lasts from when it started
AXES_RESET_ON_SUCCESS = False  # one's own sign-in must not wipe an address's failures
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in the event log already
AXES_VERBOSE = False
# DRF: anonymous API calls at the "anon" rate, each user's at TOCSIN_API_USER_RATE; the address
# comes from the same trusted hops. Ingest, heartbeat pings and status pages are plain Django
# views with their own limits (per integration): DRF's throttles never see them.
# Clients counted as sign-in protection counts them (IPv6 by /64): tocsin.security.throttling.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "tocsin.security.throttling.AnonRateThrottle",
    "tocsin.security.throttling.UserRateThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] = env_str("TOCSIN_API_USER_RATE", "3000/min")
REST_FRAMEWORK["NUM_PROXIES"] = TOCSIN_PROXY_HOPS if TOCSIN_BEHIND_PROXY else 0

# --- Outbound guard (issue #14) ---
# Addresses/CIDRs that users' destinations may reach although private, loopback, link-local…
# (probes: TOCSIN_PROBE_ALLOW too); docs/security-outbound.md.
TOCSIN_OUTBOUND_ALLOW = env_networks("TOCSIN_OUTBOUND_ALLOW")
TOCSIN_PROBE_ALLOW = env_networks("TOCSIN_PROBE_ALLOW")
# Folders whose SQLite files SQL checks may read (none by default; never Tocsin's own database).
TOCSIN_PROBE_SQLITE_DIRS = env_list("TOCSIN_PROBE_SQLITE_DIRS", [])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Ingest keys and other credentials sit in some paths, which Django names in its warnings.
    "filters": {"redact_secrets": {"()": "tocsin.redaction.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default handler for these prints unfiltered under DEBUG (e.g. the runserver
        # request lines, paths with keys in them); the root console handler above is enough.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
        # httpx logs every request URL at INFO; webhook URLs carry tokens.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Sign-ins are events already; axes' own lines: failures and lockouts only.
        "axes": {"level": "WARNING"},
    },
}

# --- Tamper-evident audit (issue #14) ---
# See docs/security-audit.md. The chain's HMAC key: set it (and keep it out of the database's
# reach) in production; empty derives one from SECRET_KEY. Changing it breaks verification of
# everything sealed before.
TOCSIN_AUDIT_KEY = env_str("TOCSIN_AUDIT_KEY")
# Events are sealed once this old (seconds): longer than any transaction that writes events
# stays open, so an event is never sealed before one with a lower id has committed.
TOCSIN_AUDIT_SEAL_MARGIN = env_int("TOCSIN_AUDIT_SEAL_MARGIN", 60, minimum=0)
# How often the chains' heads are anchored (stored and logged), and verified (minutes).
TOCSIN_AUDIT_ANCHOR_MINUTES = env_int("TOCSIN_AUDIT_ANCHOR_MINUTES", 10, minimum=1)
TOCSIN_AUDIT_VERIFY_MINUTES = env_int("TOCSIN_AUDIT_VERIFY_MINUTES", 15, minimum=1)
# Every event a request records carries the client's address (Event.ip): set early, so the
# sign-in events have it too.
MIDDLEWARE.insert(1, "tocsin.audit.context.ClientAddress")
# The audit anchors are log lines that log shipping must keep, whatever LOG_LEVEL says.
LOGGING["loggers"]["tocsin.audit.anchor"] = {"level": "INFO"}
