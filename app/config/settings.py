"""Settings of the comment app, read from the environment.

Required: DJANGO_SECRET_KEY, DATABASE_URL, REDIS_URL. Start-up stops with a clear message when one is missing,
rather than running with a guessed secret or a database nobody meant. Everything else has a safe default
(debug off, secure cookies only when DJANGO_SECURE is on).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(
            f"The environment variable {name} is required and is not set. "
            f"Servers read it from /etc/comments/comments.env (see docs/runbook.md)."
        )
    return value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_rate(name: str, default: str) -> str | None:
    """A rate limit such as 30/min (per s, min, h or day) for config/throttling.py; "off" for none."""
    value = os.environ.get(name, "").strip() or default
    if value.lower() == "off":
        return None
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name} must be a rate such as 30/min (or /s, /h, /day) or off, not {value!r}.")
    return value


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None


# libpq connection parameters a DATABASE_URL may carry after `?`: the ones the deployment sets.
DATABASE_URL_OPTIONS = {"target_session_attrs", "sslmode"}


def database_from_url(url: str) -> dict:
    """Turn postgres://user:password@host:port/name into a Django DATABASES entry.

    Several hosts, host1,host2,host3:5432 with ?target_session_attrs=read-write (a Patroni cluster), are libpq's
    multi-host form: each connection tries them in order and keeps the first that accepts writes, so every process
    follows a failover at its next connection, with no restart and no proxy.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"} or not parts.path.strip("/"):
        raise ImproperlyConfigured(
            "DATABASE_URL must look like postgres://user:password@host:5432/name, "
            f"not {parts.scheme}://...{parts.path}."
        )
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - DATABASE_URL_OPTIONS
    if unknown:
        raise ImproperlyConfigured(
            f"DATABASE_URL may carry only {', '.join(sorted(DATABASE_URL_OPTIONS))} after '?', not {', '.join(sorted(unknown))}."
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(parts.port or ""),
        # Persistent connections: mod_wsgi daemons and Daphne workers are long-lived.
        "CONN_MAX_AGE": env_int("DJANGO_DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            # A database that is down or unreachable is an answer within seconds (a 503), never a request that
            # hangs; with several hosts, the time is spent on each host that does not answer.
            "connect_timeout": env_int("DJANGO_DB_CONNECT_TIMEOUT", 3),
            # A host that vanishes (powered off, cut off) sends no reset: without these a connection to it would
            # wait for the kernel's retransmissions, about fifteen minutes, before the process notices and reconnects
            # to the new leader. Unacknowledged data fails after tcp_user_timeout; an idle connection is probed.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 3,
            "keepalives_count": 3,
            "tcp_user_timeout": env_int("DJANGO_DB_TCP_USER_TIMEOUT_MS", 10000),
            **options,
        },
    }


SECRET_KEY = env_required("DJANGO_SECRET_KEY")
# Keys of before a rotation (playbooks/rotate-secrets.yml), separated by spaces: what they signed (sessions, password
# reset links, signed values) stays valid while new signatures use SECRET_KEY. Drop them once those have expired.
SECRET_KEY_FALLBACKS = os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "accounts",
    "graphs",
    "comments",
    "live",
    "web",
]

MIDDLEWARE = [
    # First: the time of a write as its author feels it, every other middleware included.
    "config.metrics.HttpWriteMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "web.middleware.ContentSecurityPolicyMiddleware",
    # Before anything reads the query string (sessions, authentication, views): a NUL in it is a 400.
    "config.middleware.QueryTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(env_required("DATABASE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_required("REDIS_URL")
# The Daphne workers behind Apache's /ws/ balancer, as host:port, one per line of the file the apache role writes
# (read at each check: a new worker or host needs no restart of the app), or listed here: /healthz reports whether
# they answer. Neither: not checked (a development server has none).
DAPHNE_MEMBERS_FILE = os.environ.get("COMMENTS_DAPHNE_MEMBERS_FILE", "")
DAPHNE_MEMBERS = env_list("COMMENTS_DAPHNE_MEMBERS")
# Maintenance mode (live/maintenance.py): while this file exists, the Daphne workers accept every WebSocket and close
# it at once with 4012, touching neither PostgreSQL nor Redis; Apache answers HTTP with a 503 page on the same file.
# Empty: never in maintenance (a development server).
MAINTENANCE_FILE = os.environ.get("COMMENTS_MAINTENANCE_FILE", "")
# Django's cache is the same Redis, under its own key prefix: the rate-limit counters (config/throttling.py) must be
# shared by every mod_wsgi process and host, which a per-process memory cache would not do.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "comments-cache",
        # Fail fast: without Redis the limits are skipped (config/throttling.py), the request goes on.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
}
CHANNEL_LAYERS = {
    "default": {
        # The pub/sub layer: one SUBSCRIBE per graph per worker and one PUBLISH per event. The list-based
        # RedisChannelLayer failed handshakes under connection bursts and left stale group members for a day
        # (docs/performance.md), and we keep no per-channel state in Redis that could go stale.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "graph-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or str(BASE_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Content-hashed names (collectstatic writes a manifest): Apache caches /static/ for long, and every deploy
    # still loads one consistent set of the page's modules.
    "staticfiles": {"BACKEND": "web.storage.HashedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns "no credentials" into a 401 rather than a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.JSONParser"],  # JSON only, within DATA_UPLOAD_MAX_MEMORY_SIZE
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Graph comments API",
    "DESCRIPTION": "Comments on graphs, nodes, edges and subgraphs, with a live WebSocket feed (docs/protocol.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Limits of the domain, in one place.
GRAPH_MAX_ELEMENTS = env_int("GRAPH_MAX_ELEMENTS", 5000)
GRAPH_MAX_BYTES = env_int("GRAPH_MAX_BYTES", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = GRAPH_MAX_BYTES + 64 * 1024
COMMENT_MAX_LENGTH = 10_000
# People one comment may name with @ (each one a notification): a comment naming more is refused, not cut.
COMMENT_MAX_MENTIONS = env_int("COMMENT_MAX_MENTIONS", 20)
WEBSOCKET_MAX_FRAME_BYTES = 64 * 1024
# Deepest nesting of arrays and objects accepted in a JSON body or frame, checked before parsing (config/inputs.py).
JSON_MAX_DEPTH = 64
WEBSOCKET_JSON_MAX_DEPTH = 32
# Rate limits of the REST writes and of sign-in (config/throttling.py, docs/protocol.md): per user and per client
# address, a 429 with Retry-After beyond them. Chosen so that no person reaches them and a script soon does:
# - a comment takes a person more than two seconds to write, so 30 a minute is beyond any human pace but stops a
#   script flooding a discussion (each comment is a stored event and a frame to every viewer); edits, deletes,
#   resolves and reopens count with them;
# - an address may be a whole lecture hall behind one NAT (the audience this system is built for): twenty times a
#   person's allowance, which still stops one machine running many accounts;
# - reactions are single clicks, often taken back: twice the comments' rate;
# - sign-in: 10 attempts a minute at one username from one address is plenty for typos and slow for guessing; 100
#   a minute from one address lets a class sign in together and still bounds guesses spread over many usernames.
THROTTLE_RATES = {
    "comments.user": env_rate("THROTTLE_COMMENTS_PER_USER", "30/min"),
    "comments.address": env_rate("THROTTLE_COMMENTS_PER_ADDRESS", "600/min"),
    "reactions.user": env_rate("THROTTLE_REACTIONS_PER_USER", "60/min"),
    "reactions.address": env_rate("THROTTLE_REACTIONS_PER_ADDRESS", "1200/min"),
    "login.address_username": env_rate("THROTTLE_LOGINS_PER_ADDRESS_AND_USERNAME", "10/min"),
    "login.address": env_rate("THROTTLE_LOGINS_PER_ADDRESS", "100/min"),
}
WEBSOCKET_RATE_PER_SECOND = env_int("WEBSOCKET_RATE_PER_SECOND", 20)
WEBSOCKET_RATE_BURST = env_int("WEBSOCKET_RATE_BURST", 40)
# Presence (live/presence.py): each worker refreshes its viewers every PRESENCE_REFRESH_SECONDS; entries of a
# worker that stopped refreshing (it died) expire after PRESENCE_TTL_SECONDS and are pruned by the next refresh of
# a live worker, so a dead worker's viewers vanish within TTL + REFRESH seconds (25 s: "about 30 s" in the
# protocol). Joins and leaves are gathered for PRESENCE_COALESCE_SECONDS into one Redis write and one frame.
PRESENCE_REFRESH_SECONDS = env_int("PRESENCE_REFRESH_SECONDS", 5)
PRESENCE_TTL_SECONDS = env_int("PRESENCE_TTL_SECONDS", 20)
PRESENCE_COALESCE_SECONDS = 0.1
# A presence frame names at most this many viewers (with the count of all), and goes to a graph's sockets at most
# once per PRESENCE_MIN_INTERVAL_SECONDS: a hall of 5,000 joining costs each viewer about one frame a second.
PRESENCE_MAX_LISTED = env_int("PRESENCE_MAX_LISTED", 50)
PRESENCE_MIN_INTERVAL_SECONDS = env_float("PRESENCE_MIN_INTERVAL_SECONDS", 1.0)
# Every open socket's access is checked again this often, in bulk per worker (live/access.py), so that a viewer
# whose access was revoked stops hearing the graph within this bound even when the announcement was lost.
ACCESS_RECHECK_SECONDS = env_int("ACCESS_RECHECK_SECONDS", 60)
# Open WebSockets one user may hold on one Daphne worker (tabs, devices); more are closed with 4429.
WEBSOCKET_MAX_PER_USER = env_int("WEBSOCKET_MAX_PER_USER", 20)
# Every this many seconds each worker reads the last seq of the graphs it shows and has sockets that are behind fetch
# what they missed (live/fanout.py): the bound on how late a comment whose broadcast Redis lost arrives.
FANOUT_CATCH_UP_SECONDS = env_float("FANOUT_CATCH_UP_SECONDS", 5.0)

# Metrics (config/metrics.py): per-graph gauges only for this many graphs with most viewers on a worker, so that a
# site with thousands of graphs does not give Prometheus thousands of series per worker.
METRICS_TOP_GRAPHS = env_int("METRICS_TOP_GRAPHS", 10)
# Draining a Daphne worker (live/drain.py, on SIGUSR1): its sockets are closed with 4012 over this many seconds,
# then it waits up to the grace for them to go before it stops. Supervisor's stopwaitsecs must exceed the sum.
DAPHNE_DRAIN_SPREAD_SECONDS = env_float("DAPHNE_DRAIN_SPREAD_SECONDS", 5.0)
DAPHNE_DRAIN_GRACE_SECONDS = env_float("DAPHNE_DRAIN_GRACE_SECONDS", 5.0)

# Production behind Apache's TLS: Apache sets X-Forwarded-Proto, Daphne runs with --proxy-headers.
SECURE = env_bool("DJANGO_SECURE", False)
if SECURE:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    # HSTS for sibling subdomains and the browsers' preload list are decisions about a whole domain, not about
    # this app: they stay off unless the operator turns them on, so their two reminders are silenced.
    SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
