"""Settings, all read from the environment (12-factor).

Development defaults (DEBUG on, SQLite, in-memory channel layer) come from the Makefile's `run` target;
with DEBUG off every secret must be given and `AMODAL_AUTH=open` is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from core.ratelimit import Rate

# Generic Django classes (ModelAdmin[Model], ...) subscriptable at run time, as the type hints write them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def env_rate(name: str) -> str:
    """A rate limit ("600/minute", normalised), or "" for none ("", "0")."""
    try:
        return str(Rate.parse(os.environ.get(name, "")) or "")
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be a number of requests per second, minute, hour or day (e.g. '600/minute'), "
            f"or 0 for no limit; not {os.environ[name]!r}."
        ) from None


def env_whole_number(name: str, default: int, what: str) -> int:
    value = os.environ.get(name, "").strip() or str(default)
    if not (value.isascii() and value.isdigit()):
        raise ImproperlyConfigured(f"{name} must be a whole number of {what}, not {value!r}.")
    return int(value)


def env_count(name: str) -> int:
    return env_whole_number(name, 0, "streams (0 for no limit)")


def env_flag(name: str, default: bool = False) -> bool:
    """An on/off setting; anything but a clear yes or no is refused (not read as off)."""
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in {"0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    raise ImproperlyConfigured(f"{name} must be on or off (1/0, true/false, yes/no, on/off), not {os.environ[name]!r}.")


def required_secret(name: str, dev_value: str) -> str:
    value = os.environ.get(name, "")
    if value:
        return value
    if DEBUG:
        return dev_value
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")


DEBUG = env_bool("DEBUG")
SECRET_KEY = required_secret("SECRET_KEY", "dev-only-secret-key-not-for-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or (["*"] if DEBUG else ["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "daphne",  # before staticfiles, so `runserver` is the ASGI one
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/docs/, served from here (no CDN)
    "corsheaders",
    "channels",
    "scoping",
    "memory",  # before agents and the others: its tool and prompt section come first, as they always have
    "agents",
    "connections",
    "stores",
    "studio",
    "examples.finance_app",
    # Last: its ready() loads the agent folder once every app above has registered its part.
    "amodal_site",
]

MIDDLEWARE = [
    "corsheaders.middleware.CorsMiddleware",
    # JSON errors on the API paths (404, 405, 413, 500, 503), inside CORS so they carry its headers.
    "amodal_site.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "amodal_site.security.ContentSecurityPolicyMiddleware",  # CSP on HTML pages (admin, Studio)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "amodal_site.urls"
ASGI_APPLICATION = "amodal_site.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("AMODAL_DB_POOL", True):
    # psycopg's pool: chat streams return their connection after each step (core.db.db_call),
    # so hundreds of open streams share AMODAL_DB_POOL_SIZE connections instead of one each.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # required by the pool
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ.get("AMODAL_DB_POOL_SIZE", "20")),
        "timeout": float(os.environ.get("AMODAL_DB_POOL_TIMEOUT", "30")),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and not env_bool("AMODAL_DB_JIT", False):
    # PostgreSQL compiles a query to machine code (JIT) once its estimated cost is high, as Studio's reads over
    # hundreds of thousands of rows are: measured at 60-250 ms of compiling for queries that run in 100-300 ms.
    # JIT pays off for analytic queries of many seconds, which this application does not run.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c jit=off".strip()
AMODAL_DB_PARALLEL_WORKERS = env_whole_number("AMODAL_DB_PARALLEL_WORKERS", 0, "workers per query")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL's parallel query (its default: 2 helper processes per scan) made Studio's mid-size aggregates
    # slower, not faster: starting the workers and merging their partial sums cost more than the scan (the
    # 365-day Cost & Usage page at 1M usage rows: 346 ms with them, 260 ms without, every other page the same
    # or faster), and under concurrent requests each helper takes a core and a backend from another request.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    parallel = f"-c max_parallel_workers_per_gather={AMODAL_DB_PARALLEL_WORKERS}"
    options["options"] = f"{options.get('options', '')} {parallel}".strip()
# Row-level security as a second lock behind the scoped manager (scoping.row_security): on by default on
# PostgreSQL (docs/security.md gives its cost), off with AMODAL_DB_ROW_SECURITY=0; SQLite has none. The backend
# is Django's PostgreSQL one plus the scope switch, which does nothing while the setting is off.
USES_POSTGRESQL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
AMODAL_DB_ROW_SECURITY = env_flag("AMODAL_DB_ROW_SECURITY", default=USES_POSTGRESQL)
AMODAL_DB_TENANT_ROLE = os.environ.get("AMODAL_DB_TENANT_ROLE", "") or "amodal_tenant"
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", AMODAL_DB_TENANT_ROLE):
    raise ImproperlyConfigured(
        "AMODAL_DB_TENANT_ROLE must be a PostgreSQL role name of lower-case letters, digits and underscores "
        f"(at most 63, not starting with a digit), not {AMODAL_DB_TENANT_ROLE!r}."
    )
if USES_POSTGRESQL:
    DATABASES["default"]["ENGINE"] = "scoping.postgresql"
elif AMODAL_DB_ROW_SECURITY:
    raise ImproperlyConfigured(
        "AMODAL_DB_ROW_SECURITY needs PostgreSQL (DATABASE_URL=postgres://...); SQLite has no row-level security."
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent readers and one writer (daphne threads, tests): WAL plus a busy timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # The layer's receive is a blocking BZPOPMIN of 5 s; redis-py 8 also times socket reads out
            # after 5 s by default, which would break every receive (lost cancels, WebSockets closed
            # with 1011). Reads must be allowed to outlast the blocking pop.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "admin:login"

# --- The runtime's own settings -------------------------------------------------------------------

AMODAL_AGENT_DIR = Path(os.environ.get("AMODAL_AGENT_DIR") or BASE_DIR / "examples" / "finance-agent")

AMODAL_AUTH = os.environ.get("AMODAL_AUTH", "token").strip().lower()
if AMODAL_AUTH not in {"token", "open"}:
    raise ImproperlyConfigured(f"AMODAL_AUTH must be 'token' or 'open', not {AMODAL_AUTH!r}.")
if AMODAL_AUTH == "open" and not DEBUG:
    raise ImproperlyConfigured("AMODAL_AUTH=open is for development only and is refused when DEBUG is off.")

# JWTs: HS256 with AMODAL_JWT_SECRET, or RS256/ES256 verified with the public key in a file.
AMODAL_JWT_ALGORITHM = os.environ.get("AMODAL_JWT_ALGORITHM", "HS256")
if AMODAL_JWT_ALGORITHM not in {"HS256", "RS256", "ES256"}:
    raise ImproperlyConfigured("AMODAL_JWT_ALGORITHM must be HS256, RS256 or ES256.")
AMODAL_JWT_PUBLIC_KEY_FILE = os.environ.get("AMODAL_JWT_PUBLIC_KEY_FILE", "")
if AMODAL_JWT_ALGORITHM == "HS256":
    AMODAL_JWT_SECRET = required_secret("AMODAL_JWT_SECRET", "dev-only-jwt-secret-change-me-0123456789")
else:
    AMODAL_JWT_SECRET = os.environ.get("AMODAL_JWT_SECRET", "")
    if not AMODAL_JWT_PUBLIC_KEY_FILE:
        raise ImproperlyConfigured(f"{AMODAL_JWT_ALGORITHM} needs AMODAL_JWT_PUBLIC_KEY_FILE.")

# When set, every JWT must carry this `aud` / `iss` claim (SPEC §2); mint_token adds them.
AMODAL_JWT_AUDIENCE = os.environ.get("AMODAL_JWT_AUDIENCE", "").strip()
AMODAL_JWT_ISSUER = os.environ.get("AMODAL_JWT_ISSUER", "").strip()

# Fernet key for ScopedCredential values at rest. The development key is derived from SECRET_KEY.
AMODAL_CREDENTIALS_KEY = os.environ.get("AMODAL_CREDENTIALS_KEY", "")
if not AMODAL_CREDENTIALS_KEY and not DEBUG:
    raise ImproperlyConfigured("AMODAL_CREDENTIALS_KEY must be set when DEBUG is off.")

AMODAL_ALLOWED_ORIGINS = env_list("AMODAL_ALLOWED_ORIGINS")
if "*" in AMODAL_ALLOWED_ORIGINS and AMODAL_AUTH != "open":
    raise ImproperlyConfigured("AMODAL_ALLOWED_ORIGINS='*' is allowed only with AMODAL_AUTH=open.")

# --- CORS (SPEC §3 "Cross-origin use"; django-cors-headers, its middleware first) ---------- BEGIN CORS ---
# Browsers on the SaaS's own origins call chat, history, stores and memory directly. Only the origins in
# AMODAL_ALLOWED_ORIGINS (none by default); "*" (checked above: AMODAL_AUTH=open only) allows any origin.
# Preflights are answered by the middleware before any view, so without authentication; the headers are
# added to every response of these paths, the event stream and JSON errors included. Credentials travel
# in the Authorization header, never in cookies, so CORS_ALLOW_CREDENTIALS stays off.
# The widget's own files (/widget/amodal/...) set `Access-Control-Allow-Origin: *` themselves.
CORS_ALLOW_ALL_ORIGINS = "*" in AMODAL_ALLOWED_ORIGINS
CORS_ALLOWED_ORIGINS = [] if CORS_ALLOW_ALL_ORIGINS else [origin.rstrip("/") for origin in AMODAL_ALLOWED_ORIGINS]
CORS_URLS_REGEX = r"^/(chat(/stream|/sync)?|sessions/.+|api/stores(/.*)?|api/memory(/.*)?)$"
CORS_ALLOW_METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "last-event-id", "x-requested-with")
CORS_EXPOSE_HEADERS = ["X-Next-Cursor", "Retry-After"]  # Retry-After: 429 and 503 answers
CORS_ALLOW_CREDENTIALS = False
CORS_PREFLIGHT_MAX_AGE = 600
# ------------------------------------------------------------------------------------------- END CORS ---

# The largest request body the API paths accept (413 request_too_large above it); Django's own limit for
# reading a body must not be lower.
AMODAL_MAX_BODY_BYTES = int(os.environ.get("AMODAL_MAX_BODY_BYTES") or 1024 * 1024)
if AMODAL_MAX_BODY_BYTES < 1:
    raise ImproperlyConfigured("AMODAL_MAX_BODY_BYTES must be a positive number of bytes.")
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, AMODAL_MAX_BODY_BYTES)

# Seconds of silence before the event stream sends a `: keep-alive` comment frame.
AMODAL_SSE_KEEPALIVE_SECONDS = float(os.environ.get("AMODAL_SSE_KEEPALIVE_SECONDS", "15"))

# The turn engine (SPEC §3 "Durability"). A running message holds a lease on its session for this many
# seconds, renewed every third of it: a dead process's session is free again within this time.
AMODAL_LEASE_SECONDS = float(os.environ.get("AMODAL_LEASE_SECONDS", "15"))
# Streamed text is saved at least this often (and at every tool call), never per delta.
AMODAL_CHECKPOINT_SECONDS = float(os.environ.get("AMODAL_CHECKPOINT_SECONDS", "1"))
# How long one model call may take before it fails (the SDK's request timeout).
AMODAL_MODEL_TIMEOUT_SECONDS = float(os.environ.get("AMODAL_MODEL_TIMEOUT_SECONDS", "600"))
# Threads that run ORM calls from async code (core.db.db_call): at most this many database connections
# are in use at once by chat streams and WebSockets, whatever their number.
AMODAL_DB_THREADS = int(os.environ.get("AMODAL_DB_THREADS", "8"))
if AMODAL_DB_THREADS < 1:
    raise ImproperlyConfigured("AMODAL_DB_THREADS must be a positive number of threads.")
# The paths served without Django's sync middleware (sessions, auth, CSRF, messages): the chat, which
# authenticates with bearer tokens only. Each hand-off to a thread costs more than the rest of a message.
AMODAL_ASYNC_PATHS = ("/chat", "/chat/stream", "/chat/sync")
for _name in ("AMODAL_LEASE_SECONDS", "AMODAL_CHECKPOINT_SECONDS", "AMODAL_MODEL_TIMEOUT_SECONDS"):
    if not globals()[_name] > 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number of seconds.")

# Rate limits of the API paths (scoping.ratelimits): requests per API key and per scope ("600/minute"), and
# streams open at once per API key and per scope. Off by default ("" or 0): the right numbers depend on the
# SaaS (one backend key may carry every tenant's traffic). Counted in Redis when REDIS_URL is set (shared by
# every process), else in this process.
AMODAL_RATE_LIMIT_KEY = env_rate("AMODAL_RATE_LIMIT_KEY")
AMODAL_RATE_LIMIT_SCOPE = env_rate("AMODAL_RATE_LIMIT_SCOPE")
AMODAL_STREAMS_PER_KEY = env_count("AMODAL_STREAMS_PER_KEY")
AMODAL_STREAMS_PER_SCOPE = env_count("AMODAL_STREAMS_PER_SCOPE")

# Studio's sessions search on PostgreSQL: a full-text search matching at least this many messages (or titles)
# is "broad": the list then shows its sessions in order without counting them (studio.selectors.sessions).
AMODAL_STUDIO_BROAD_SEARCH = int(os.environ.get("AMODAL_STUDIO_BROAD_SEARCH", "5000"))
if AMODAL_STUDIO_BROAD_SEARCH < 1:
    raise ImproperlyConfigured("AMODAL_STUDIO_BROAD_SEARCH must be a positive number of matches.")

# The demo finance API that the bundled example agent calls (served in development only by default).
AMODAL_DEMO_API = env_bool("AMODAL_DEMO_API", default=DEBUG)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.validation.JSONParser"],  # depth-limited, UTF-8, no NaN
}

SPECTACULAR_SETTINGS = {
    "TITLE": "amodal runtime API",
    "DESCRIPTION": "Chat, session history, stores and memory, partitioned by scope (one `scope_id` per tenant).\n\n"
    "**Authentication**: `Authorization: Bearer <token>`, a JWT your backend signs (its `scope_id` and "
    "`scopeContext` claims decide the scope) or an API key (`ak_...`, which names `scope_id` itself). "
    '**Errors** are always `{"error": {"code", "message"}}`; another scope\'s thing is a 404 exactly like '
    "a missing one. **Rate limits** answer 429 `rate_limited` with `Retry-After`; a database that is down, 503 "
    "`service_unavailable` with `Retry-After`. The stream's event types have JSON Schemas at "
    "`/api/schemas/events.schema.json` (and `docs/schemas/events/`); the WebSocket `/ws/chat` is described in "
    "`docs/websocket.md`.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ (amodal_site.api_docs): Swagger UI from drf-spectacular-sidecar's static files, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "amodal_site.schema.complete_schema",
        "amodal_site.schema.add_event_schemas",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Security headers and cookies (SPEC §8) -------------------------------------------------------------
# SecurityMiddleware: nosniff and Referrer-Policy on every response; XFrameOptionsMiddleware: DENY.
# amodal_site.security adds the Content-Security-Policy of the HTML pages.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# AMODAL_SECURE_COOKIES=1 when the site is served over HTTPS only: session and CSRF cookies are sent over
# HTTPS only, and HSTS (one year) tells browsers to use nothing else. Behind a TLS-terminating proxy, run
# daphne with --proxy-headers so requests are known to be secure (HSTS goes on secure requests only).
AMODAL_SECURE_COOKIES = env_bool("AMODAL_SECURE_COOKIES")
SESSION_COOKIE_SECURE = AMODAL_SECURE_COOKIES
CSRF_COOKIE_SECURE = AMODAL_SECURE_COOKIES
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if AMODAL_SECURE_COOKIES else 0
