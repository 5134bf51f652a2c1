"""Vigil's one settings file, read from the environment.

Defaults are safe for local use: SQLite under VIGIL_DATA_DIR, no broker, a
generated secret key kept in the data dir. With VIGIL_DEBUG off and no
VIGIL_SECRET_KEY, production refuses to start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def envbool(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("VIGIL_DATA_DIR", "var")).resolve()

DEBUG = envbool("VIGIL_DEBUG", "false")
# `vigil run` on a laptop is the embedded mode: local use, so a secret key is
# generated once and kept in the data dir. Anything else must set one.
EMBEDDED = envbool("VIGIL_EMBEDDED", "false")


def _secret_key() -> str:
    key = os.environ.get("VIGIL_SECRET_KEY", "")
    if key:
        return key
    if os.environ.get("VIGIL_TESTING"):
        return "test-only-secret-key-" + "x" * 40
    # A local install keeps the key that `vigil run` generated in its data dir,
    # so that its other commands (`vigil token create`) work there too.
    path = DATA_DIR / "secret-key"
    if path.exists():
        return path.read_text().strip()
    if EMBEDDED or DEBUG:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        path.touch(mode=0o600)
        path.write_text(key)
        return key
    raise ImproperlyConfigured(
        "VIGIL_SECRET_KEY is not set. Set it to a long random string "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
        "or run the embedded server with `vigil run`."
    )


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("VIGIL_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "vigil.servers",
    "vigil.metrics",
    "vigil.ingest",
    "vigil.api",
    "vigil.web",
    "vigil.scrape",
    "vigil.alerts",
    "vigil.notify",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "vigil.urls"
WSGI_APPLICATION = "vigil.wsgi.application"

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

DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'vigil.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, conn_max_age=600
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if os.environ.get("VIGIL_TESTING") else 600
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait
        # on busy_timeout instead of failing with "database is locked" midway.
        "transaction_mode": "IMMEDIATE",
        # Seconds a writer waits for the lock; agents time out at about 10 s.
        "timeout": 5,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=10000; "
            "PRAGMA temp_store=MEMORY;"
        ),
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("VIGIL_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# Unset by default: the apps' static folders are served through the finders.
STATIC_ROOT = os.environ.get("VIGIL_STATIC_ROOT") or None
# The embedded server serves static files straight from the apps.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG and not EMBEDDED and not os.environ.get("VIGIL_TESTING"):
    # Production sits behind TLS; VIGIL_INSECURE_HTTP=true opts out (a lab).
    _tls = not envbool("VIGIL_INSECURE_HTTP", "false")
    SESSION_COOKIE_SECURE = _tls
    CSRF_COOKIE_SECURE = _tls
    SECURE_SSL_REDIRECT = _tls and envbool("VIGIL_SSL_REDIRECT", "true")
    SECURE_HSTS_SECONDS = envint("VIGIL_HSTS_SECONDS", 31536000 if _tls else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _tls
    SECURE_HSTS_PRELOAD = _tls
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# Ingest
INGEST_MAX_BODY_BYTES = envint("VIGIL_INGEST_MAX_BODY_BYTES", 10 * 1024 * 1024)
INGEST_MAX_DECODED_BYTES = envint("VIGIL_INGEST_MAX_DECODED_BYTES", 64 * 1024 * 1024)
# One writer thread per process commits the samples of concurrent requests
# together (group commit); off, each request commits its own transaction.
INGEST_GROUP_COMMIT = envbool("VIGIL_INGEST_GROUP_COMMIT", "true")
INGEST_GROUP_MAX_ROWS = envint("VIGIL_INGEST_GROUP_MAX_ROWS", 100_000)
# Past this many rows waiting for the writer, ingest answers 503 + Retry-After.
INGEST_QUEUE_MAX_ROWS = envint("VIGIL_INGEST_QUEUE_MAX_ROWS", 1_000_000)
INGEST_RETRY_AFTER_SECONDS = envint("VIGIL_INGEST_RETRY_AFTER_SECONDS", 5)

# The agent that `vigil run` starts for its own machine.
LOCAL_AGENT_INTERVAL_SECONDS = float(os.environ.get("VIGIL_LOCAL_AGENT_INTERVAL", "10"))

# Servers
SERVER_DOWN_AFTER_SECONDS = envint("VIGIL_SERVER_DOWN_AFTER_SECONDS", 60)
UP_INTERVAL_SECONDS = envint("VIGIL_UP_INTERVAL_SECONDS", 15)

# Scraping Prometheus exporters (vigil.scrape; docs/node-exporter.md).
SCRAPE_TICK_SECONDS = float(os.environ.get("VIGIL_SCRAPE_TICK_SECONDS", "2"))
SCRAPE_CONCURRENCY = envint("VIGIL_SCRAPE_CONCURRENCY", 8)
SCRAPE_MAX_TARGETS_PER_RUN = envint("VIGIL_SCRAPE_MAX_TARGETS_PER_RUN", 500)
SCRAPE_MAX_BYTES = envint("VIGIL_SCRAPE_MAX_BYTES", 10 * 1024 * 1024)
SCRAPE_MAX_SAMPLES = envint("VIGIL_SCRAPE_MAX_SAMPLES", 50_000)
# The SSRF guard refuses loopback, private and link-local addresses; list the
# networks of your exporters ("10.0.0.0/8,192.168.1.0/24"), or allow them all.
SCRAPE_ALLOWED_NETWORKS = os.environ.get("VIGIL_SCRAPE_ALLOWED_NETWORKS", "")
SCRAPE_ALLOW_PRIVATE = envbool("VIGIL_SCRAPE_ALLOW_PRIVATE", "false")

# History (vigil.metrics; docs/history.md). Retention defaults; the admin's
# Retention row overrides them.
RETENTION_RAW_DAYS = envint("VIGIL_RETENTION_RAW_DAYS", 14)
RETENTION_5M_DAYS = envint("VIGIL_RETENTION_5M_DAYS", 180)
RETENTION_1H_DAYS = envint("VIGIL_RETENTION_1H_DAYS", 5 * 365)
# Raw samples older than this are compacted into compressed blocks of
# HISTORY_BLOCK_SECONDS each (also the span of a PostgreSQL partition).
HISTORY_COMPACT_AFTER_SECONDS = envint("VIGIL_HISTORY_COMPACT_AFTER_SECONDS", 2 * 3600)
HISTORY_BLOCK_SECONDS = envint("VIGIL_HISTORY_BLOCK_SECONDS", 2 * 3600)
# A sample older than this when it arrives is late: ingest marks its rollup
# bucket and block window to be computed again. Rollups wait a little longer
# than this before they close a bucket.
HISTORY_LATE_SECONDS = envint("VIGIL_HISTORY_LATE_SECONDS", 300)
# Decoded blocks kept in memory per process for reads (charts refresh).
HISTORY_BLOCK_CACHE_BYTES = envint("VIGIL_HISTORY_BLOCK_CACHE_MB", 256) * 1024 * 1024
# How often `vigil run` maintains the history; 0 turns it off.
HISTORY_INTERVAL_SECONDS = envint("VIGIL_HISTORY_INTERVAL_SECONDS", 60)

# The alert engine (vigil.alerts; docs/alerts.md).
ALERT_EVALUATION_INTERVAL_SECONDS = envint("VIGIL_ALERT_EVALUATION_INTERVAL_SECONDS", 30)
# Alerts of one rule that fire within this time arrive as one notification.
ALERT_GROUP_WAIT_SECONDS = envint("VIGIL_ALERT_GROUP_WAIT_SECONDS", 30)
# A series silent this long while its server reports is "gone", said once.
ALERT_SERIES_GONE_AFTER_SECONDS = envint("VIGIL_ALERT_SERIES_GONE_AFTER_SECONDS", 3600)
# Icinga's flap detection: share of state changes in the last 21 evaluations.
ALERT_FLAP_HIGH_PERCENT = envint("VIGIL_ALERT_FLAP_HIGH_PERCENT", 30)
ALERT_FLAP_LOW_PERCENT = envint("VIGIL_ALERT_FLAP_LOW_PERCENT", 25)
# One alert for a location instead of a page per server when at least this
# share of its servers (and this many) are down at once.
ALERT_LOCATION_OUTAGE_PERCENT = envint("VIGIL_ALERT_LOCATION_OUTAGE_PERCENT", 50)
ALERT_LOCATION_OUTAGE_MIN_SERVERS = envint("VIGIL_ALERT_LOCATION_OUTAGE_MIN_SERVERS", 3)
# A server created but never heard from is "new" this long, then down.
SERVER_NEW_GRACE_SECONDS = envint("VIGIL_SERVER_NEW_GRACE_SECONDS", 3600)

# Notifications (vigil.notify; docs/channels.md).
# The address of this Vigil as people reach it, for links in notifications.
BASE_URL = os.environ.get("VIGIL_BASE_URL", "http://127.0.0.1:8000")
# SMTP server: smtp://user:password@host:587 (STARTTLS), smtps://...:465
# (implicit TLS), smtp://host:25 (plain); ?from=vigil@example.com sets the sender.
EMAIL_URL = os.environ.get("VIGIL_EMAIL_URL", "")
# A PEM file of CA certificates trusted for the SMTP server's TLS, in addition
# to the system's (a private CA); verification itself is never turned off.
EMAIL_CA_FILE = os.environ.get("VIGIL_EMAIL_CA_FILE", "")
NOTIFY_TICK_SECONDS = float(os.environ.get("VIGIL_NOTIFY_TICK_SECONDS", "2"))
NOTIFY_MAX_ATTEMPTS = envint("VIGIL_NOTIFY_MAX_ATTEMPTS", 8)
NOTIFY_RETRY_BASE_SECONDS = envint("VIGIL_NOTIFY_RETRY_BASE_SECONDS", 10)
NOTIFY_RETRY_MAX_SECONDS = envint("VIGIL_NOTIFY_RETRY_MAX_SECONDS", 3600)
# The SSRF guard: webhooks, Slack, PagerDuty, Opsgenie and SMS may not reach
# loopback, private or link-local addresses unless allowed here.
NOTIFY_ALLOWED_NETWORKS = os.environ.get("VIGIL_NOTIFY_ALLOWED_NETWORKS", "")
NOTIFY_ALLOW_PRIVATE = envbool("VIGIL_NOTIFY_ALLOW_PRIVATE", "false")
# A dead man's switch (a Healthchecks.io-style ping URL), pinged every
# WATCHDOG_INTERVAL_SECONDS while the scheduler and the alert engine are healthy.
WATCHDOG_URL = os.environ.get("VIGIL_WATCHDOG_URL", "")
WATCHDOG_INTERVAL_SECONDS = envint("VIGIL_WATCHDOG_INTERVAL_SECONDS", 60)

# Celery: unset broker means the embedded scheduler of `vigil run`.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else None
)
CELERY_TASK_IGNORE_RESULT = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "maintain-history": {
        "task": "vigil.metrics.maintain_history",
        "schedule": float(HISTORY_INTERVAL_SECONDS),
        "options": {"expires": HISTORY_INTERVAL_SECONDS * 2},
    },
    "deliver-notifications": {
        "task": "vigil.notify.deliver_due",
        "schedule": NOTIFY_TICK_SECONDS,
        "options": {"expires": 30},
    },
    "watchdog": {
        "task": "vigil.notify.watchdog",
        "schedule": float(WATCHDOG_INTERVAL_SECONDS),
        "options": {"expires": WATCHDOG_INTERVAL_SECONDS},
    },
    "evaluate-alerts": {
        "task": "vigil.alerts.evaluate_alerts",
        "schedule": float(ALERT_EVALUATION_INTERVAL_SECONDS),
        "options": {"expires": ALERT_EVALUATION_INTERVAL_SECONDS},
    },
    "update-server-up": {
        "task": "vigil.servers.update_up",
        "schedule": float(UP_INTERVAL_SECONDS),
    },
    "scrape-due": {
        "task": "vigil.scrape.scrape_due",
        "schedule": SCRAPE_TICK_SECONDS,
        # A run that waited longer than a few ticks is stale: the next one claims the targets.
        "options": {"expires": SCRAPE_TICK_SECONDS * 3},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("VIGIL_LOG_LEVEL", "INFO")},
    # Client errors are answered with a message; they are not server problems.
    "loggers": {"waitress.queue": {"level": "ERROR"}, "django.request": {"level": "ERROR"}},
}
