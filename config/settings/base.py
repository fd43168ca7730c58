"""Settings read from environment variables, with safe local defaults.

Production (DJANGO_DEBUG unset or false) refuses to start without DJANGO_SECRET_KEY.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it, or set DJANGO_DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-local-development-key"  # noqa: S105 - only reachable with DEBUG on

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", ["http://127.0.0.1:8000", "http://localhost:8000"])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.forms",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "audit",
    "base",
    "traffic",
    "flags",
    "experiments",
    "alerts",
    "guarded",
    "serving",
    "pages",
]

MIDDLEWARE = [
    # First: every answer is counted and timed, and carries the request's id.
    "config.metrics_http.RequestMetricsMiddleware",
    "config.request_ids.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.content_security.ContentSecurityPolicy",
    "config.middleware.RequestGuard",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A write's `comment` and `apply_at` for the review gate (base/reviews.py).
    "base.change_context.ChangeContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

# The SDK edge's own request path (config/edge.py): the SDK endpoints (OFREP, the GrowthBook
# payload and remote evaluation, /api/v1/evaluate, the events API) skip the middleware that only
# pages use (sessions, CSRF, authentication, messages, static files, the review gate, login
# throttling). They keep the metrics, the request id, Django's security headers and one
# middleware that adds what the rest of MIDDLEWARE would have added to their answers (the
# Content-Security-Policy, X-Frame-Options, Content-Length) and checks the Host header.
# SDK_EDGE_LEAN=false sends them through MIDDLEWARE like every other request.
SDK_EDGE_LEAN = env_bool("SDK_EDGE_LEAN", True)
SDK_EDGE_MIDDLEWARE = [
    "config.metrics_http.RequestMetricsMiddleware",
    "config.request_ids.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.edge.EdgeResponseHeaders",
]
# Their routes, and the JSON answers of errors no view handled (400, 403, 404, 500).
SDK_EDGE_URLCONF = "serving.edge_urls"

# Admin login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one user
# name from one address, that pair is locked out for AXES_COOLOFF_MINUTES. A successful login
# resets the count; `manage.py axes_reset` lifts every lockout. Programmatic logins without a
# request (tests, scripts) skip the throttle: see base.authentication.LoginThrottleBackend.
AUTHENTICATION_BACKENDS = [
    "base.authentication.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_VERBOSE = False
# The sign-in records are administered by `base.signin_admin`, which asks the permission service.
AXES_ENABLE_ADMIN = False
# Behind a proxy, set DJANGO_TRUSTED_PROXY_HEADER (e.g. HTTP_X_FORWARDED_FOR) so that the
# client's address, not the proxy's, is throttled.
AXES_IPWARE_META_PRECEDENCE_ORDER = [h for h in [env_str("DJANGO_TRUSTED_PROXY_HEADER", "")] if h] + ["REMOTE_ADDR"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/splitbase")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 3))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / ".static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/admin/login/"
# A login without `next` (the admin's login form sends none) lands on the result pages.
LOGIN_REDIRECT_URL = "/experiments/"

# Request bodies above this size get 413 (the events batch limit is separate).
# 4 MiB: a segment of 100,000 ids (the most one takes) is about 2 MB of JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_MAX_BODY_BYTES", 4 * 1_048_576)

# Every JSON body (management API, SDK endpoints, events) may nest at most this deep.
JSON_MAX_DEPTH = env_int("JSON_MAX_DEPTH", 32)

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": ["config.api_input.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "base.authentication.ManagementTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["base.authentication.HasManagementScope"],
    "DEFAULT_PAGINATION_CLASS": "config.api_input.SafeLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"] = [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ]

# The API documentation (/api/docs/) and schema (/api/schema/): "authenticated" (default) asks
# for a staff login or a management token; "public" serves them to anyone. Swagger UI is served
# from the installed drf-spectacular-sidecar package, so the page works without internet.
API_DOCS_ACCESS = env_str("API_DOCS_ACCESS", "authenticated")
if API_DOCS_ACCESS not in ("authenticated", "public"):
    raise ImproperlyConfigured("API_DOCS_ACCESS must be 'authenticated' or 'public'.")

SPECTACULAR_SETTINGS = {
    "TITLE": "Splitbase API",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "DESCRIPTION": "Feature flags, experiments, OFREP evaluation and event ingestion.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name ("kind") get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "RuleKindEnum": ["force", "rollout", "experiment"],
        "SegmentKindEnum": ["condition", "ids"],
        "MetricKindEnum": ["conversion", "mean", "count", "ratio", "retention", "funnel", "ltv"],
        "StatsEngineEnum": ["frequentist", "bayesian"],
    },
    # The SDK endpoints are plain Django views; their description is added here.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "serving.schema.add_sdk_endpoints",
    ],
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
# Redis for what the processes share (the SDK rate limits); by default the broker's, when the
# broker is Redis. Empty without Redis.
REDIS_URL = env_str("REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")

# Serving (flag evaluation for SDKs): see docs/sdk.md.
# Compiled snapshots of each environment are kept per process and written here, so that a
# process started while PostgreSQL is down can still answer; buffered exposures wait here too.
# The default is private to the service's user (created 0700), not the shared temporary directory.
SNAPSHOT_DIR = Path(env_str("SNAPSHOT_DIR", str(Path.home() / ".local" / "state" / "splitbase" / "serving")))
SNAPSHOT_CHECK_INTERVAL = float(env_str("SNAPSHOT_CHECK_INTERVAL", "1.0"))  # seconds between version checks
# "background": a thread of each process checks versions and recompiles, requests never wait
# for the database (but a new process's first request of an environment, for at most
# SNAPSHOT_COLD_START_TIMEOUT seconds). "inline": the check runs in the request (tests, whose
# data lives in a transaction other threads cannot see).
SNAPSHOT_REFRESH = env_str("SNAPSHOT_REFRESH", "background")
SNAPSHOT_COLD_START_TIMEOUT = float(env_str("SNAPSHOT_COLD_START_TIMEOUT", "3.0"))
# A database that has not answered a version check for this long counts as unreachable (a
# silent partition): /readyz says degraded and the events API answers 503 at once.
SNAPSHOT_STALE_AFTER = float(env_str("SNAPSHOT_STALE_AFTER", "5.0"))
SNAPSHOT_RETRY_INTERVAL = float(env_str("SNAPSHOT_RETRY_INTERVAL", "5.0"))  # seconds between retries when down
# Rate limits per SDK key, counted in Redis and so shared by every process and replica
# (serving/ratelimit.py, docs/sdk.md "Rate limits"): on average RATE_LIMIT_PER_SECOND requests
# per second, bursts up to RATE_LIMIT_BURST. 0 turns the limits off.
RATE_LIMIT_PER_SECOND = float(env_str("RATE_LIMIT_PER_SECOND", "1000.0"))
RATE_LIMIT_BURST = env_int("RATE_LIMIT_BURST", 2000)
# "sliding-window-counter" (default), "fixed-window" or "moving-window" (the `limits` strategies).
RATE_LIMIT_STRATEGY = env_str("RATE_LIMIT_STRATEGY", "sliding-window-counter")
# Where the counters live: REDIS_URL by default; "memory://" counts in each process on its own.
RATE_LIMIT_STORAGE_URL = env_str("RATE_LIMIT_STORAGE_URL", REDIS_URL or "memory://")
RATE_LIMIT_KEY_PREFIX = env_str("RATE_LIMIT_KEY_PREFIX", "splitbase-ratelimit")
# Redis answering slower than this counts as unreachable: requests are then served without a
# limit (fail open, reported by /readyz) and Redis is tried again after the retry interval.
RATE_LIMIT_REDIS_TIMEOUT = float(env_str("RATE_LIMIT_REDIS_TIMEOUT", "0.1"))
RATE_LIMIT_RETRY_INTERVAL = float(env_str("RATE_LIMIT_RETRY_INTERVAL", "5.0"))
# One Redis call counts up to this many requests of a key at once (a hundredth of its limit at
# most) for the process to serve over the next second; 1 counts every request on its own.
RATE_LIMIT_RESERVE_MAX = env_int("RATE_LIMIT_RESERVE_MAX", 50)
SDK_MAX_BODY_BYTES = env_int("SDK_MAX_BODY_BYTES", 65_536)  # larger evaluation requests get 413
SDK_MAX_FLAGS_PER_REQUEST = env_int("SDK_MAX_FLAGS_PER_REQUEST", 1000)
# Remote evaluation (POST /api/eval/{clientKey}): most attributes per request, and how deep an
# attribute's value may nest (a list is one level, a list of objects two).
SDK_MAX_ATTRIBUTES = env_int("SDK_MAX_ATTRIBUTES", 200)
SDK_MAX_ATTRIBUTE_DEPTH = env_int("SDK_MAX_ATTRIBUTE_DEPTH", 4)
SDK_PAYLOAD_MAX_AGE = env_int("SDK_PAYLOAD_MAX_AGE", 30)  # Cache-Control max-age of the SDK payload
# Exposures are written in batches by a background thread; while the database is down they
# are spooled to files under SNAPSHOT_DIR and replayed later. 0 disables the thread (tests).
EXPOSURE_FLUSH_INTERVAL = float(env_str("EXPOSURE_FLUSH_INTERVAL", "0.5"))
EXPOSURE_BUFFER_MAX = env_int("EXPOSURE_BUFFER_MAX", 10_000)
# Seconds between writes of the "last evaluated" time of each flag (one statement per process
# and interval, never one per request). 0 disables the thread (tests).
EVALUATION_FLUSH_INTERVAL = float(env_str("EVALUATION_FLUSH_INTERVAL", "60"))

# Streaming (docs/sdk.md, Streaming): a separate asynchronous process (`python -m serving.streams`)
# holds the SDKs' server-sent event streams. STREAMING_URL is its public base URL as SDKs reach
# it; empty turns streaming off (no `x-sse-support` header, no OFREP `eventStreams`).
STREAMING_URL = env_str("STREAMING_URL", "").rstrip("/")
STREAM_BIND = env_str("STREAM_BIND", "127.0.0.1:8001")  # address of the streaming process
STREAM_HEARTBEAT_INTERVAL = float(env_str("STREAM_HEARTBEAT_INTERVAL", "15"))  # seconds between comment lines
STREAM_RETRY_MS = env_int("STREAM_RETRY_MS", 3000)  # reconnection delay the streams suggest to clients
STREAM_MAX_PER_KEY = env_int("STREAM_MAX_PER_KEY", 10_000)  # open streams per SDK key and streaming process
STREAM_MAX_CONNECTIONS = env_int("STREAM_MAX_CONNECTIONS", 20_000)  # open streams per streaming process
STREAM_INACTIVITY_DELAY = env_int("STREAM_INACTIVITY_DELAY", 120)  # OFREP's inactivityDelaySec
# Longest wait of an OFREP bulk request that names a configuration version (flagConfigEtag)
# this process does not serve yet.
STREAM_CATCH_UP_TIMEOUT = float(env_str("STREAM_CATCH_UP_TIMEOUT", "1.0"))

CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# The queue readouts go to; a deployment sharing one broker between services (or a test run)
# gives it a name of its own.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")

# The statistics engine of a new experiment when neither the request nor the project settings
# (experiments.ProjectSettings) name one: "frequentist" or "bayesian" (docs/statistics.md).
STATS_ENGINE_DEFAULT = env_str("STATS_ENGINE_DEFAULT", "frequentist")
if STATS_ENGINE_DEFAULT not in ("frequentist", "bayesian"):
    raise ImproperlyConfigured("STATS_ENGINE_DEFAULT must be 'frequentist' or 'bayesian'.")
# The Bayesian recommendation (docs/reading-results.md): ship a variation when its chance to
# beat the control is at least BAYES_CHANCE_TO_WIN and its risk (the expected relative loss of
# choosing it) is below BAYES_RISK_THRESHOLD; roll back when the control's chance is as high.
BAYES_CHANCE_TO_WIN = float(env_str("BAYES_CHANCE_TO_WIN", "0.95"))
BAYES_RISK_THRESHOLD = float(env_str("BAYES_RISK_THRESHOLD", "0.0025"))
if not 0.5 < BAYES_CHANCE_TO_WIN < 1 or not 0 < BAYES_RISK_THRESHOLD < 1:
    raise ImproperlyConfigured("BAYES_CHANCE_TO_WIN must be in (0.5, 1) and BAYES_RISK_THRESHOLD in (0, 1).")

# Readouts of running experiments are refreshed on this schedule (minutes).
READOUT_INTERVAL_MINUTES = env_int("READOUT_INTERVAL_MINUTES", 15)
# Webhooks (alerts/): delivered by the worker every WEBHOOK_INTERVAL_SECONDS, each attempt with a
# timeout, retried with exponential backoff (10 s, 20 s, ... at most 1 h) up to WEBHOOK_MAX_ATTEMPTS.
WEBHOOK_INTERVAL_SECONDS = env_int("WEBHOOK_INTERVAL_SECONDS", 5)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 5)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
# Guarded rollouts (guarded/): checked every GUARDED_CHECK_SECONDS; a readout of each is queued
# when its last is older than GUARDED_READOUT_SECONDS.
GUARDED_CHECK_SECONDS = env_int("GUARDED_CHECK_SECONDS", 60)
GUARDED_READOUT_SECONDS = env_int("GUARDED_READOUT_SECONDS", 300)

# Readouts under faults (docs/operations.md). A running readout renews its lease every
# READOUT_HEARTBEAT_SECONDS; one whose lease of READOUT_LEASE_SECONDS ran out (its worker died)
# is marked failed and queued again by the sweep, which runs every READOUT_SWEEP_SECONDS and
# also sends readouts that were queued while the broker was unreachable.
READOUT_LEASE_SECONDS = env_int("READOUT_LEASE_SECONDS", 120)
READOUT_HEARTBEAT_SECONDS = env_int("READOUT_HEARTBEAT_SECONDS", 20)
READOUT_SWEEP_SECONDS = env_int("READOUT_SWEEP_SECONDS", 60)
# The longest a readout may run: the readout task's hard time limit (prefork workers), and the
# bound the broker's visibility timeout must exceed.
READOUT_TIME_LIMIT = env_int("READOUT_TIME_LIMIT", 3600)
# Seconds a readout waits once it holds its experiment's lock, before computing: 0 except in
# fault drills and tests that need a readout in progress.
READOUT_DELAY_SECONDS = float(env_str("READOUT_DELAY_SECONDS", "0"))
if not 0 < READOUT_HEARTBEAT_SECONDS < READOUT_LEASE_SECONDS:
    raise ImproperlyConfigured("READOUT_HEARTBEAT_SECONDS must be above 0 and below READOUT_LEASE_SECONDS.")
# A task taken by a worker but not acknowledged (tasks are acknowledged when they end) is given
# to another worker after this many seconds: longer than the longest readout, so that a readout
# still running is never started twice; a readout whose worker died is requeued by the sweep.
CELERY_BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", READOUT_TIME_LIMIT + 600)
if CELERY_BROKER_VISIBILITY_TIMEOUT <= READOUT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_BROKER_VISIBILITY_TIMEOUT must be longer than READOUT_TIME_LIMIT.")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
CELERY_BEAT_SCHEDULE = {
    "alerts-webhooks-deliver": {
        "task": "alerts.tasks.webhooks_deliver_task",
        "schedule": float(WEBHOOK_INTERVAL_SECONDS),
    },
    "guarded-rollouts-check": {
        "task": "guarded.tasks.guarded_rollouts_check_task",
        "schedule": float(GUARDED_CHECK_SECONDS),
    },
    "experiments-refresh-running": {
        "task": "experiments.tasks.experiment_refresh_running_task",
        "schedule": READOUT_INTERVAL_MINUTES * 60.0,
    },
    "holdouts-refresh-active": {
        "task": "experiments.tasks.holdout_refresh_active_task",
        "schedule": READOUT_INTERVAL_MINUTES * 60.0,
    },
    # Served exposures of warehouse-backed experiments appended to their data source's table
    # (experiments/exposure_export.py), every this many seconds.
    "experiments-exposures-export": {
        "task": "experiments.tasks.exposures_export_task",
        "schedule": float(env_int("EXPOSURE_EXPORT_SECONDS", 600)),
    },
    "experiments-readouts-sweep": {
        "task": "experiments.tasks.readouts_sweep_task",
        "schedule": float(READOUT_SWEEP_SECONDS),
    },
    # Planned coverage raises of running experiments (experiments/ramp.py) are applied within
    # this many seconds of their time.
    # Scheduled change requests (base/change_requests.py) are applied within this many seconds.
    "base-change-requests-due": {
        "task": "base.tasks.change_requests_apply_due_task",
        "schedule": float(env_int("CHANGE_REQUEST_CHECK_SECONDS", 30)),
    },
    "experiments-ramp-steps": {
        "task": "experiments.tasks.experiment_ramp_steps_task",
        "schedule": float(env_int("RAMP_CHECK_SECONDS", 60)),
    },
}

# Every log line passes through a filter that replaces management tokens and SDK keys by a
# fingerprint (docs/security.md), whichever logger wrote it.
# LOG_FORMAT=json writes one JSON object per line (time, level, logger, message, request_id,
# exception); plain text is the default. Both carry the request id (config/request_ids.py).
LOG_FORMAT = env_str("LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "config.logs.RedactSecrets"},
        "request_id": {"()": "config.request_ids.RequestIdFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logs.json_formatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_secrets", "request_id"],
                             "formatter": "json" if LOG_FORMAT == "json" else "text"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}

# /metrics (config/metrics_http.py): a bearer token, or else only these client networks.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])
# Collectors that read current figures when /metrics is scraped.
METRICS_COLLECTORS = [
    "serving.metrics.SnapshotCollector",
    "experiments.metrics.ReadoutCollector",
    "experiments.metrics.QueueCollector",
]

UNFOLD = {
    "SITE_TITLE": "Splitbase",
    "SITE_HEADER": "Splitbase",
    "SITE_SUBHEADER": "Feature flags and experiments",
    "SHOW_HISTORY": True,
    # The site menu (top of the sidebar) leads to the pages the growth team reads.
    "SITE_DROPDOWN": [
        {"title": "Experiment results", "icon": "science", "link": "/experiments/"},
        {"title": "New experiment (guided)", "icon": "add_circle", "link": "/experiments/new/basics/"},
        {"title": "Flags and stale flags", "icon": "flag", "link": "/flags/"},
        {"title": "API documentation", "icon": "description", "link": "/api/docs/"},
    ],
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": "/favicon.ico"}],
}

# Deployments behind TLS (docs/security.md, "Production settings"): each switch is an
# environment variable so the same image runs locally over plain HTTP.
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# The health probes are answered over plain HTTP inside the cluster even when the site redirects.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp, config/content_security.py): every page, the API docs and
# the login page load scripts, styles, images and fonts from this site only, with no inline
# script or style. The admin (django-unfold, whose Alpine.js evaluates expressions and whose
# templates carry style attributes) adds 'unsafe-eval' for scripts and 'unsafe-inline' for styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
CONTENT_SECURITY_POLICY_ADMIN_UPDATE = {"script-src": [UNSAFE_EVAL], "style-src": [UNSAFE_INLINE]}

# Files of `make demo` (its secret key, its login and token, the file broker): see README.md.
DEMO_DIR = Path(env_str("DEMO_DIR", str(BASE_DIR / ".demo")))

# A broker without any server, for `make demo` on a machine with no Redis: messages are files.
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env_str("CELERY_BROKER_DIR", str(DEMO_DIR / "broker")))
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # The exchange tables; by default a `control` folder in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

# Flag lifecycle: temporary flags unevaluated, or serving one variant to everyone, for this
# many days are listed as stale (permanent flags never are).
STALE_FLAG_DAYS = env_int("STALE_FLAG_DAYS", 30)
