"""One settings module, driven by environment variables (see README, "Settings")."""

import hashlib
import os
from datetime import timedelta
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
# WebSocket handshakes are accepted from the origin they are made on (scheme,
# host in ALLOWED_HOSTS, port: signaling.origins) and from these, exactly.
CONSULT_ALLOWED_ORIGINS = env_list("CONSULT_ALLOWED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "consult",
    "signaling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "consult.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before common (Django's i18n docs): picks the language
    # from the cookie set by set_language, else Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "consult.timezones.ViewerTimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
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


def check_redis_url(url: str) -> None:
    """Refuse at start-up what redis-py would not connect with (or would misread)."""
    from redis.connection import parse_url

    forms = "redis://HOST[:PORT][/DB], rediss://... (TLS) or unix:///PATH[?db=DB]"
    try:
        parts = parse_url(url)
        path = url.split("?", 1)[0].split("://", 1)[1]
    except (ValueError, IndexError) as error:
        # Never the URL itself, which may hold a password; redis-py's reason
        # names only the part it refused.
        raise ImproperlyConfigured(f"REDIS_URL is not {forms}: {error}") from None
    unix = url.startswith("unix:")
    where = parts.get("path") if unix else parts.get("host")
    database = "" if unix else path.partition("/")[2]
    if not where or not (database == "" or database.isdigit()):
        raise ImproperlyConfigured(f"REDIS_URL is not {forms}")


if REDIS_URL:
    check_redis_url(REDIS_URL)
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

# The cache is shared by every process when there is Redis. Nothing a login
# needs is kept in it (failed logins are counted in the database, see
# consult.throttle); per-address caps are not here either: sockets are counted
# per process in signaling.limits, waiting tickets in the database.
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
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Every login (ours, the admin's) goes through django-axes first: see
# consult.throttle, and the AXES_* settings below.
AUTHENTICATION_BACKENDS = [
    "consult.throttle.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/desk/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "한국어")]
# scripts/i18n.sh check points this at a scratch copy, to leave locale/ as it is.
LOCALE_PATHS = [Path(env("CONSULT_LOCALE_PATH", str(BASE_DIR / "locale")))]
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
# Callbacks nobody handled are deleted by purge_history after this many days.
CONSULT_CALLBACK_DAYS = int(env("CONSULT_CALLBACK_DAYS", "14"))
# How long a refused caller may carry their join time to another queue.
CONSULT_MOVE_SECONDS = float(env("CONSULT_MOVE_SECONDS", "600"))
# Media must flow this soon after the answer, or both pages say so and the
# watchdog's ladder starts (docs/connectivity.md); a call whose media still
# never flowed CONSULT_CONNECT_RESCUE_SECONDS later ends as failed to connect.
CONSULT_CONNECT_SECONDS = float(env("CONSULT_CONNECT_SECONDS", "10"))
CONSULT_CONNECT_RESCUE_SECONDS = float(env("CONSULT_CONNECT_RESCUE_SECONDS", "15"))
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

# E-mail ("your turn is near"): SMTP when EMAIL_HOST is set, else printed to
# the console. CONSULT_PUBLIC_URL is where the links in e-mails point.
EMAIL_HOST = env("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(env("EMAIL_PORT", "587"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "consult@localhost")
CONSULT_PUBLIC_URL = env("CONSULT_PUBLIC_URL", "http://127.0.0.1:8000")
# Joins: per socket and per client address (per server process), a token
# bucket each: a burst, refilled at so many a minute (then `too_many_joins`).
CONSULT_JOIN_BURST_PER_SOCKET = int(env("CONSULT_JOIN_BURST_PER_SOCKET", "6"))
CONSULT_JOINS_PER_MINUTE_PER_SOCKET = float(
    env("CONSULT_JOINS_PER_MINUTE_PER_SOCKET", "6")
)
CONSULT_JOIN_BURST_PER_ADDRESS = int(env("CONSULT_JOIN_BURST_PER_ADDRESS", "30"))
CONSULT_JOINS_PER_MINUTE_PER_ADDRESS = float(
    env("CONSULT_JOINS_PER_MINUTE_PER_ADDRESS", "30")
)
# Admission control (signaling/admission.py): while this process's event loop
# lags more than CONSULT_ADMISSION_LAG_MS (smoothed; 0 turns it off), new joins
# and desks that would bring a consultant online get `try_later`, to come back
# after CONSULT_ADMISSION_RETRY_SECONDS; the calls already set up keep going.
CONSULT_ADMISSION_LAG_MS = float(env("CONSULT_ADMISSION_LAG_MS", "5"))
CONSULT_ADMISSION_RETRY_SECONDS = int(env("CONSULT_ADMISSION_RETRY_SECONDS", "5"))
# A negative bound would refuse new work for good; a hint under a second is
# not a wait (`retry_after` is whole seconds to wait).
if CONSULT_ADMISSION_LAG_MS < 0:
    raise ImproperlyConfigured("CONSULT_ADMISSION_LAG_MS must be 0 (off) or more")
if CONSULT_ADMISSION_RETRY_SECONDS < 1:
    raise ImproperlyConfigured("CONSULT_ADMISSION_RETRY_SECONDS must be 1 or more")
# A ticket cancelled (or dropped for good) this soon after joining leaves no
# history row: it is counted in consult_quick_cancels instead.
CONSULT_QUICK_CANCEL_SECONDS = float(env("CONSULT_QUICK_CANCEL_SECONDS", "10"))
# The liveness check: a caller waiting this long (0: never) is asked whether
# they are still there, and loses the place without an answer within the
# second setting; after an answer, they are asked again as long again later.
CONSULT_STILL_THERE_AFTER_SECONDS = float(
    env("CONSULT_STILL_THERE_AFTER_SECONDS", "900")
)
CONSULT_STILL_THERE_ANSWER_SECONDS = float(
    env("CONSULT_STILL_THERE_ANSWER_SECONDS", "60")
)
# A queue is under pressure when its CONSULT_PRESSURE_ADDRESSES busiest client
# addresses hold at least CONSULT_PRESSURE_SHARE of its places (max_queue):
# then every join to it needs a proof of work (ALTCHA) solved by the page, of
# CONSULT_JOIN_CHALLENGE_MAX_NUMBER (the difficulty: SHA-256 tries at most).
CONSULT_PRESSURE_ADDRESSES = int(env("CONSULT_PRESSURE_ADDRESSES", "4"))
CONSULT_PRESSURE_SHARE = float(env("CONSULT_PRESSURE_SHARE", "0.5"))
CONSULT_JOIN_CHALLENGE_MAX_NUMBER = int(
    env("CONSULT_JOIN_CHALLENGE_MAX_NUMBER", "100000")
)
# django-altcha: challenges are signed with this key (derived from the secret
# key unless given), expire after two minutes, and each is redeemed once
# (marked used in the default cache, Redis when there is one).
ALTCHA_HMAC_KEY = (
    env("ALTCHA_HMAC_KEY")
    or hashlib.sha256(f"consult-altcha:{SECRET_KEY}".encode()).hexdigest()
)
ALTCHA_CHALLENGE_EXPIRE = 120_000
# Login throttling (django-axes, consult.throttle): failures per username and
# address before a lockout; the address alone may fail 4 times as often, and
# its lockout holds only for the names that failed from it.
CONSULT_LOGIN_MAX_FAILURES = int(env("CONSULT_LOGIN_MAX_FAILURES", "5"))
CONSULT_LOGIN_LOCKOUT_SECONDS = int(env("CONSULT_LOGIN_LOCKOUT_SECONDS", "900"))
AXES_HANDLER = "consult.throttle.LoginThrottle"
AXES_FAILURE_LIMIT = CONSULT_LOGIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=CONSULT_LOGIN_LOCKOUT_SECONDS)
# In this order: consult.throttle.LoginThrottle reads (pair, address).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_USERNAME_CALLABLE = "consult.throttle.login_username"
AXES_CLIENT_IP_CALLABLE = "consult.addresses.request_address"
AXES_LOCKOUT_CALLABLE = "consult.throttle.lockout_response"
# A lockout lasts its time from the last counted failure; refused attempts
# during it do not prolong it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
# Successful logins are in the events log; no table of them grows forever.
AXES_DISABLE_ACCESS_LOG = True
# Who may read /metrics: a bearer token, or these addresses (IPs or networks).
CONSULT_METRICS_TOKEN = env("CONSULT_METRICS_TOKEN")
CONSULT_METRICS_ALLOWED_IPS = env_list("CONSULT_METRICS_ALLOWED_IPS", "127.0.0.1,::1")
# Days the history keeps callers' names and reasons after a consultation
# ends; `manage.py purge_history` then anonymises it (consult/services/privacy.py).
CONSULT_HISTORY_RETENTION_DAYS = int(env("CONSULT_HISTORY_RETENTION_DAYS", "90"))
if CONSULT_HISTORY_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("CONSULT_HISTORY_RETENTION_DAYS must be 0 or more")


# --- Recordings (docs/recording.md) -------------------------------------------
# Files live in the `recordings` storage: a directory outside STATIC_ROOT that
# nothing serves directly (only consult/recording_views.py, with a permission
# check), or an S3-compatible bucket when CONSULT_RECORDING_S3_BUCKET is set.
def recording_storage(get=env) -> dict:
    """The `recordings` storage that the environment (`get`) describes."""
    bucket = get("CONSULT_RECORDING_S3_BUCKET")
    if not bucket:
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {
                "location": get("CONSULT_RECORDING_DIR")
                or str(BASE_DIR / "recordings"),
                "base_url": None,
                "directory_permissions_mode": 0o700,
                "file_permissions_mode": 0o600,
            },
        }
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": get("CONSULT_RECORDING_S3_ENDPOINT") or None,
            "region_name": get("CONSULT_RECORDING_S3_REGION") or None,
            "access_key": get("CONSULT_RECORDING_S3_ACCESS_KEY") or None,
            "secret_key": get("CONSULT_RECORDING_S3_SECRET_KEY") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "recordings": recording_storage(),
}
# Whether a recording holds the caller's video besides both voices.
CONSULT_RECORDING_VIDEO = env_bool("CONSULT_RECORDING_VIDEO", False)
# Days a recording's file is kept after it ends; then the repair pass (and
# `manage.py purge_recordings`) deletes it and notes that in its receipt.
CONSULT_RECORDING_RETENTION_DAYS = int(env("CONSULT_RECORDING_RETENTION_DAYS", "30"))
if CONSULT_RECORDING_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("CONSULT_RECORDING_RETENTION_DAYS must be 1 or more")
# One uploaded chunk at most (a few seconds of audio is some 50 KB).
CONSULT_RECORDING_CHUNK_MAX_BYTES = int(
    env("CONSULT_RECORDING_CHUNK_MAX_BYTES", str(2 * 1024 * 1024))
)

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
