"""Django settings, read from the environment once (see README's configuration table).

Defaults give the embedded demo: a SQLite file, a filesystem broker and local media, all
under ``VAR_DIR``. Production sets ``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``SECRET_KEY``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from skinplatform.env import (
    ConfigError,
    cache_config,
    check_secret_key,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off (the demo sets one for you)")
    SECRET_KEY = "debug-only-insecure-key"
else:
    check_secret_key(SECRET_KEY, debug=DEBUG)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
# Behind TLS: HTTP is redirected and browsers told to stay on HTTPS, except for /healthz,
# which load balancers probe over plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if BEHIND_TLS_PROXY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Client addresses (login lockout, API throttles) come from X-Forwarded-For only through this
# many proxies of ours; more would let a client choose its own address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if BEHIND_TLS_PROXY else 0)
# Browser features no page here uses are off, so injected content cannot ask for them.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer", "bluetooth", "browsing-topics", "camera", "display-capture",
        "geolocation", "gyroscope", "hid", "idle-detection", "magnetometer", "microphone",
        "midi", "payment", "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
    )
}  # fmt: skip

# Scripts and styles come only from our own static files: no page has inline script, style
# element or style attribute (a test scans every template), so injected markup cannot run.
# Images may be data:/blob: URLs (the panel editor draws crops on a canvas).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "axes",
    "skinplatform.accounts",
    "curation",
]

MIDDLEWARE = [
    "skinplatform.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "skinplatform.middleware.OutageMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "skinplatform.urls"
WSGI_APPLICATION = "skinplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend_templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "skinplatform.accounts.context.roles",
            ],
        },
    },
]

# --- database -----------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs a web process and a worker process on one file: WAL lets them read while
    # the other writes, and IMMEDIATE transactions avoid SQLite's lock-upgrade deadlock.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out user or address is refused before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed sign-ins are counted per username and per client address (in the database, so all
# web processes share them); reaching the limit locks that username or address for the
# cool-off, and each further try restarts it. An admin lifts a lockout in the Django admin.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "skinplatform.accounts.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "skinplatform.accounts.throttling.client_ip"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- cache --------------------------------------------------------------------------------
# API throttles count requests here: with several gunicorn workers it must be shared (Redis),
# or each worker keeps its own count.
CACHES = {"default": cache_config(env_str("CACHE_URL"))}

# --- files --------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "local")
if STORAGE_BACKEND not in {"local", "s3"}:
    raise ConfigError(f"STORAGE_BACKEND={STORAGE_BACKEND!r} must be 'local' or 's3'")
_default_storage = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(MEDIA_ROOT)},
}
if STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET", required=True),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "file_overwrite": False,
            "default_acl": None,
        },
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# A local working copy of stored PDFs for PyMuPDF when the storage is remote.
PDF_CACHE_DIR = Path(env_str("PDF_CACHE_DIR", str(VAR_DIR / "pdf-cache")))

UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 500 * 1024 * 1024)
UPLOAD_MAX_PAGES = env_int("UPLOAD_MAX_PAGES", 3000)
# Django must not refuse the multipart body before our own size check names the problem.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

# --- ingest -------------------------------------------------------------------------------
INGEST_CHUNK_PAGES = env_int("INGEST_CHUNK_PAGES", 20)
# An ingest run with no chunk progress for this long has its pending work re-sent (beat).
INGEST_STALL_SECONDS = env_int("INGEST_STALL_SECONDS", 600)
# A running chunk (or finalising task) reports this often; one whose report is older than the
# stale limit lost its worker and is re-sent by the sweep, which beat runs this often.
INGEST_HEARTBEAT_SECONDS = env_int("INGEST_HEARTBEAT_SECONDS", 10)
INGEST_HEARTBEAT_STALE_SECONDS = env_int("INGEST_HEARTBEAT_STALE_SECONDS", 45)
INGEST_SWEEP_SECONDS = env_int("INGEST_SWEEP_SECONDS", 15)
if INGEST_HEARTBEAT_STALE_SECONDS < 2 * INGEST_HEARTBEAT_SECONDS:
    raise ConfigError(
        "INGEST_HEARTBEAT_STALE_SECONDS must be at least twice INGEST_HEARTBEAT_SECONDS, "
        "or chunks still running would be re-sent"
    )
CROP_DPI = env_int("CROP_DPI", 150)
PAGE_PREVIEW_DPI = env_int("PAGE_PREVIEW_DPI", 96)

# --- review -------------------------------------------------------------------------------
CLAIM_MINUTES = env_int("CLAIM_MINUTES", 15)
# An expert may undo their own decision for this long (the page offers it for 5 s).
REVIEW_UNDO_SECONDS = env_int("REVIEW_UNDO_SECONDS", 60)
# Pairs whose extraction confidence is below this (or that carry doubts) count as doubtful.
REVIEW_DOUBTFUL_BELOW = env_float("REVIEW_DOUBTFUL_BELOW", 0.6)

# --- LLM drafting -------------------------------------------------------------------------
# No LLM_BASE_URL: a deterministic template drafter runs instead (labelled so everywhere).
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL")
LLM_TIMEOUT = env_int("LLM_TIMEOUT", 60)
LLM_CONCURRENCY = env_int("LLM_CONCURRENCY", 4)
LLM_REQUESTS_PER_MINUTE = env_int("LLM_REQUESTS_PER_MINUTE", 0)
LLM_BUDGET_TOKENS = env_int("LLM_BUDGET_TOKENS", 0)
LLM_PRICE_PROMPT_PER_1K = env_float("LLM_PRICE_PROMPT_PER_1K", 0.0)
LLM_PRICE_COMPLETION_PER_1K = env_float("LLM_PRICE_COMPLETION_PER_1K", 0.0)
LLM_DROP_UNGROUNDED = env_bool("LLM_DROP_UNGROUNDED", False)
# Vision drafting: send the panel crop (bounded in size) with the prompt's vision variant.
LLM_VISION = env_bool("LLM_VISION", False)
LLM_IMAGE_MAX_BYTES = env_int("LLM_IMAGE_MAX_BYTES", 300_000)
LLM_IMAGE_MAX_SIDE = env_int("LLM_IMAGE_MAX_SIDE", 1024)
DRAFT_ON_ACCEPT = env_bool("DRAFT_ON_ACCEPT", True)
LLM_RATE_LIMIT_REDIS_URL = env_str("LLM_RATE_LIMIT_REDIS_URL")

# --- celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
_visibility = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
    # A message taken by a worker that dies unacknowledged goes back to the queue after this;
    # Redis workers sweep for such messages every interval x throttle seconds.
    "visibility_timeout": _visibility,
    "unacked_restore_interval": max(1, min(10, _visibility // 2)),
    "unacked_restore_throttle": 1 if _visibility < 600 else 10,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_broker_dir / "queue"),
            "data_folder_out": str(_broker_dir / "queue"),
            "control_folder": str(_broker_dir / "control"),
            "store_processed": False,
        }
    )
CELERY_IMPORTS = (
    "workers.ingest",
    "workers.release",
    "workers.panels",
    "workers.maintenance",
    "workers.llm",
)
CELERY_BEAT_SCHEDULE = {
    "expire-review-claims": {"task": "workers.maintenance.expire_claims", "schedule": 60.0},
    "resume-stalled-ingests": {
        "task": "workers.maintenance.resume_stalled_ingests",
        "schedule": float(INGEST_SWEEP_SECONDS),
    },
}
# The modality classifier retrains from expert decisions (curation/services/modality.py).
MODALITY_RETRAIN_SECONDS = env_int("MODALITY_RETRAIN_SECONDS", 86400)
MODALITY_RETRAIN_MIN_HELDOUT = env_int("MODALITY_RETRAIN_MIN_HELDOUT", 20)
MODALITY_HELDOUT_EVERY = env_int("MODALITY_HELDOUT_EVERY", 5)
CELERY_BEAT_SCHEDULE["retrain-modality"] = {
    "task": "workers.maintenance.retrain_modality",
    "schedule": float(MODALITY_RETRAIN_SECONDS),
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "ingest"
CELERY_TASK_ROUTES = {
    "workers.ingest.*": {"queue": "ingest"},
    "workers.panels.*": {"queue": "ingest"},
    "workers.llm.*": {"queue": "llm"},
    "workers.release.*": {"queue": "release"},
    "workers.maintenance.*": {"queue": "ingest"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "skinplatform.accounts.throttling.ThrottledTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["skinplatform.accounts.permissions.DenyAll"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # DRF's three parsers, bounded in size and depth and refusing text Postgres cannot store
    "DEFAULT_PARSER_CLASSES": [
        "curation.api.parsers.JSONParser",
        "curation.api.parsers.FormParser",
        "curation.api.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "curation.api.base.AutoSchema",
    "EXCEPTION_HANDLER": "curation.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["skinplatform.accounts.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Generous: a runaway client is slowed, a release pull or a busy reviewer is not.
        "user": env_rate("API_USER_RATE", "200/second"),
        # Invalid tokens from one address; past this every token from it waits.
        "bad_token": env_rate("API_BAD_TOKEN_RATE", "10/minute"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MM-Skin curation platform API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from our own static files: the platform must work with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Two choice sets share a field name with another; named here, `check --deploy` is clean.
    "ENUM_NAME_OVERRIDES": {
        "ModalityEnum": "curation.models.Modality",
        "TrainingRunStatusEnum": "curation.models.TrainingRun.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
