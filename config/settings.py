"""One settings module, driven by environment variables (see README, "Settings")."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required unless DJANGO_DEBUG=1"
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "consult",
    "signaling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "consult.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# SQLite by default, PostgreSQL or any other via DATABASE_URL.
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }
_ENGINE = DATABASES["default"]["ENGINE"]
if _ENGINE.endswith("sqlite3"):
    # However SQLite is named: WAL, a busy timeout, and IMMEDIATE writes, so
    # that two writers queue up instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env(
        "SQLITE_TEST_PATH", str(BASE_DIR / "test-db.sqlite3")
    )
elif _ENGINE.endswith("postgresql") and env_bool("DATABASE_POOL", True):
    # Every service call runs in a worker thread that closes its connection
    # after it: without a pool each one opens a new PostgreSQL connection (a
    # quarter of the CPU per call, docs/benchmarks.md). A connection is
    # checked when taken from the pool, so one that a database restart or
    # failover cut is replaced instead of failing its request.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": int(env("DATABASE_POOL_SIZE", "10")),
        # How long a call waits for a connection: during an outage a socket
        # is closed with 4013 after this (twice, with the retry), not hung.
        "timeout": float(env("DATABASE_POOL_TIMEOUT", "5")),
    }
    # With the pool, Django passes this on as the pool's check on checkout.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Under ASGI every database call runs in a worker thread: persistent
# connections would leak one per thread (Django's async guide).
DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ----------------------------------------------------------
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "signaling.layers.ResilientRedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # All sockets of one process share a single Redis list, so
                # capacity is per process, not per socket.
                "capacity": int(env("CHANNEL_CAPACITY", "5000")),
                "expiry": 60,
                "prefix": env("CHANNEL_PREFIX", "consult"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Login throttling counts failures in the cache: Redis when there is one, so
# that every server process sees the same counts. (Per-address caps are not
# here: sockets are counted per process in signaling.limits, waiting tickets
# in the database.)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CHANNEL_PREFIX", "consult") + "-cache",
        }
    }

# --- Auth, i18n, static -----------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/desk/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))

# --- Security (production defaults; DEBUG relaxes what needs HTTPS) ----------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(env("DJANGO_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Container health checks and metrics scrapers talk plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# --- The consultation service -----------------------------------------------
# How long a party whose socket dropped may come back (contract: 30 s).
CONSULT_GRACE_SECONDS = float(env("CONSULT_GRACE_SECONDS", "30"))
# How often each server process proves it is alive and sweeps expired graces;
# a process silent for CONSULT_PROCESS_TIMEOUT_SECONDS is taken for dead.
CONSULT_HEARTBEAT_SECONDS = float(env("CONSULT_HEARTBEAT_SECONDS", "2"))
CONSULT_PROCESS_TIMEOUT_SECONDS = float(env("CONSULT_PROCESS_TIMEOUT_SECONDS", "10"))
# Fan-out pushes (consultants, position, queue) are merged within this window.
CONSULT_COALESCE_SECONDS = float(env("CONSULT_COALESCE_SECONDS", "1"))
# Per-socket token bucket: sustained frames per second and burst size.
CONSULT_RATE_PER_SECOND = float(env("CONSULT_RATE_PER_SECOND", "20"))
CONSULT_RATE_BURST = int(env("CONSULT_RATE_BURST", "60"))
# ICE servers handed to browsers in `hello`: comma-separated STUN URLs.
CONSULT_STUN_URLS = env_list("CONSULT_STUN_URLS")
# TURN relays (coturn `use-auth-secret`): credentials are made per socket from
# the shared secret and expire after the TTL (see consult/ice.py).
CONSULT_TURN_URLS = env_list("CONSULT_TURN_URLS")
CONSULT_TURN_SECRET = env("CONSULT_TURN_SECRET")
CONSULT_TURN_CREDENTIAL_TTL_SECONDS = int(
    env("CONSULT_TURN_CREDENTIAL_TTL_SECONDS", "3600")
)
# Proxies (IPs or networks) whose X-Forwarded-For is believed; the client's
# address is the rightmost hop that is not one of them (consult/addresses.py).
CONSULT_TRUSTED_PROXIES = env_list("CONSULT_TRUSTED_PROXIES")
# Caps per client address: open sockets (per server process; then close 4429)
# and waiting tickets (across processes; then `queue_full`).
CONSULT_MAX_SOCKETS_PER_ADDRESS = int(env("CONSULT_MAX_SOCKETS_PER_ADDRESS", "20"))
CONSULT_MAX_WAITING_PER_ADDRESS = int(env("CONSULT_MAX_WAITING_PER_ADDRESS", "5"))
# Login throttling: failures per username and address before a lockout.
CONSULT_LOGIN_MAX_FAILURES = int(env("CONSULT_LOGIN_MAX_FAILURES", "5"))
CONSULT_LOGIN_LOCKOUT_SECONDS = int(env("CONSULT_LOGIN_LOCKOUT_SECONDS", "900"))
# Who may read /metrics: a bearer token, or these addresses (IPs or networks).
CONSULT_METRICS_TOKEN = env("CONSULT_METRICS_TOKEN")
CONSULT_METRICS_ALLOWED_IPS = env_list("CONSULT_METRICS_ALLOWED_IPS", "127.0.0.1,::1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "consult.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", "plain" if DEBUG else "json"),
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}},
}
