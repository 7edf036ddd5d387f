"""Settings shared by every deployment. Everything that differs between machines comes from the environment.

Variables (all optional for a local run):
  DATABASE_URL   postgres://user@host:5432/db  (SQLite in var/ when unset)
  REDIS_URL      redis://127.0.0.1:6379/0      (Celery broker and the Channels layer)
  PROMETHEUS_URL http://127.0.0.1:9090
  SECRET_KEY / SECRET_KEY_FILE, ALLOWED_HOSTS, DEBUG
"""
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the contents of the file named by NAME_FILE (for Docker/Kubernetes secrets)."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        return Path(file_path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",  # login throttling: lockout per user and per address (issue 14)
    "drf_spectacular",
    "django_filters",
    "channels",
    "csp",
    "releases",
    "pipelines",
    "deploy",
    "sla",
    "routing",  # gray routing for schedulers (issue 6)
    "notifications",  # release events to Slack, Feishu, DingTalk, WeCom, webhooks (issue 18)
    "frontend",
    "demo",  # the one-command demo: demo_setup and demo_story commands (issue 8)
]

MIDDLEWARE = [
    "config.client_address.TrustedProxyMiddleware",  # first: everything after sees the real client address
    "releases.api.input_rules.QueryGuardMiddleware",  # NUL / lone surrogates in the path or query: 400
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the page's language: switcher cookie, else Accept-Language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "frontend.middleware.UserTimezoneMiddleware",  # times in the user's time zone (preferences, else browser)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "frontend.middleware.HtmxVaryMiddleware",  # pages differ by HX-Request: Vary says so (back button, caches)
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into a 429 page
]

# Content-Security-Policy (django-csp), everywhere so every test run exercises it: scripts only from our origin
# (no inline script, no eval), styles may be inline (htmx's indicator style, a few style attributes), the
# websocket and htmx talk to our origin only, and no one may frame the pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

ROOT_URLCONF = "config.urls"
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
                "frontend.context_processors.nav",  # dashboard navigation (issue 7)
            ],
        },
    },
]

if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"].setdefault("CONN_MAX_AGE", 0)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, plus a COMMIT whose outcome is checked when the connection breaks (issue 13).
        DATABASES["default"]["ENGINE"] = "config.postgres"
else:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "rollgate.sqlite3",
            # Web, worker and beat write to the same file: wait for the lock instead of failing.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="http://127.0.0.1:9090")

# Live events (issue 7): the pub/sub layer sends one PUBLISH per group and each server process fans out to its own
# sockets, instead of one Redis list push and pop per socket (docs/PERFORMANCE.md, "Live updates"). Live events
# need no persistence: pages re-render when their socket reconnects.
# Redis pub/sub ignores the db number in REDIS_URL: two deployments sharing one Redis server would see each
# other's events. Every channel name (live events, routing long-polls) starts with this deployment's prefix;
# by default it is derived from the database, so two deployments on different databases never mix.
ROLLGATE_CHANNEL_PREFIX = env.str("ROLLGATE_CHANNEL_PREFIX", default="")
if not ROLLGATE_CHANNEL_PREFIX:
    import hashlib

    _db = DATABASES["default"]
    _where = f"{_db.get('HOST', '')}:{_db.get('PORT', '')}/{_db['NAME']}"
    ROLLGATE_CHANNEL_PREFIX = "rollgate." + hashlib.sha256(_where.encode()).hexdigest()[:12]


def channel_layers(redis_url: str, prefix: str) -> dict:
    return {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                        "CONFIG": {"hosts": [redis_url], "prefix": prefix + "."}}}


CHANNEL_LAYERS = channel_layers(REDIS_URL, ROLLGATE_CHANNEL_PREFIX)

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE: dict = {}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]
# --- Login throttling (django-axes): every way in (/login/, /admin/login/, POST /api/auth/token/) authenticates
# through the Axes backend first. Too many failures lock out the username and the address (each on its own) for
# ROLLGATE_LOGIN_LOCKOUT_MINUTES; admins unlock in Django admin (Axes > Access attempts) or with
# `manage.py axes_reset_username <name>` / `axes_reset_ip <address>`. Lockouts write an audit row.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("ROLLGATE_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("ROLLGATE_LOGIN_LOCKOUT_MINUTES", default=15.0) / 60.0  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.client_address.axes_client_ip"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks); empty: the header is ignored.
ROLLGATE_TRUSTED_PROXIES = env.list("ROLLGATE_TRUSTED_PROXIES", default=[])

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# Chinese and English (issue 18): the language comes from the switcher (cookie), else the browser's
# Accept-Language; times are shown in the user's time zone (preferences page, else the browser's, else UTC).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# WhiteNoise serves static files straight from the finders; production.py collects them into STATIC_ROOT with
# hashed names and compressed copies.
WHITENOISE_USE_FINDERS = True
# Third-party browser libraries (htmx, Chart.js) are npm dependencies (package.json); only the files the pages
# load are published, under vendor/ (config/static_files.py: VENDOR_FILES), never the rest of node_modules.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",  # frontend/static: the project's own
    "config.static_files.VendorFinder",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so an anonymous API call gets 401 with "WWW-Authenticate: Token", not a bare 403.
        "releases.api.token_auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: every endpoint reads JSON (and the schema says so); form bodies get 415.
    "DEFAULT_PARSER_CLASSES": ["releases.api.base.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "releases.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # Only the token endpoint is throttled (guessing passwords); everything else needs a login first.
    "DEFAULT_THROTTLE_RATES": {"login": env.str("ROLLGATE_LOGIN_RATE", default="30/min")},
    # The client address is REMOTE_ADDR as config.client_address resolved it; never a raw X-Forwarded-For.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rollgate API",
    "DESCRIPTION": "Release control for agent services: versions, environments, gray releases, approvals, audit.",
    "VERSION": "0.1.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ (Swagger UI, signed-in users): the bundle from our static files, its init script a separate
    # same-origin request (SpectacularSwaggerSplitView), so the CSP's script-src 'self' holds.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False, "displayOperationId": False},
    "ENUM_NAME_OVERRIDES": {"NotificationEventEnum": "notifications.choices.EventType",
                            "DeliveryStatusEnum": "notifications.choices.DeliveryStatus"},
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "releases.api.schema_hooks.add_error_responses"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "axes": {"level": "WARNING"}},
}

# Domain settings
ROLLGATE_DEFAULT_GRAY_PHASES = [5, 10, 30, 50, 100]
ROLLGATE_MAX_COMMENT_LENGTH = 4000
# A promote without expected_weight within this many seconds of the last gray move is taken as a duplicate.
ROLLGATE_PROMOTE_DEBOUNCE_SECONDS = env.float("ROLLGATE_PROMOTE_DEBOUNCE_SECONDS", default=5.0)

# Gray routing for schedulers (routing app, issue 6)
# An agent instance is stale after missing this many heartbeats of this interval.
ROLLGATE_AGENT_HEARTBEAT_SECONDS = env.float("ROLLGATE_AGENT_HEARTBEAT_SECONDS", default=10.0)
ROLLGATE_AGENT_MISSED_HEARTBEATS = env.int("ROLLGATE_AGENT_MISSED_HEARTBEATS", default=3)
ROLLGATE_ROUTING_MAX_WAIT_SECONDS = 30.0  # cap of ?wait= on the long-polled routing table
# When set, GET /metrics/traces needs "Authorization: Bearer <this>" (Prometheus: authorization.credentials).
ROLLGATE_METRICS_TOKEN = env_secret("ROLLGATE_METRICS_TOKEN", default="")
# Without a token /metrics/traces answers 403 unless opened explicitly (local and test settings open it: loopback).
ROLLGATE_METRICS_OPEN = env.bool("ROLLGATE_METRICS_OPEN", default=False)
# /metrics/traces drops the series of a (service, env, version) that sent no trace result for this long: versions
# that no longer serve traffic leave the scrape instead of growing it forever.
# The fleet page's header counts (canaries, waiting, need attention) are shared by every viewer for this long.
ROLLGATE_FLEET_SUMMARY_CACHE_SECONDS = env.int("ROLLGATE_FLEET_SUMMARY_CACHE_SECONDS", default=5)
ROLLGATE_TRACE_SERIES_RETENTION_SECONDS = env.int("ROLLGATE_TRACE_SERIES_RETENTION_SECONDS", default=3600)
# Per-model prices (routing/prices.py): a trace result with model + tokens_in/tokens_out but no cost is priced
# from this table (an explicit cost wins; an unknown model is counted as "cost unknown", never as free). JSON:
# ROLLGATE_MODEL_PRICES='{"gpt-4o": {"input_per_1k": 0.0025, "output_per_1k": 0.01}}'; checked at start.
try:
    ROLLGATE_MODEL_PRICES = env.json("ROLLGATE_MODEL_PRICES", default={})
except ValueError as _error:
    raise RuntimeError(f"ROLLGATE_MODEL_PRICES: not valid JSON ({_error})") from None
# The demo agent's two models (demo/agent/versions.yaml): local and test settings use them when the variable is unset.
DEMO_MODEL_PRICES = {"demo-large": {"input_per_1k": 0.003, "output_per_1k": 0.015},
                     "demo-small": {"input_per_1k": 0.0005, "output_per_1k": 0.0015}}
# Deploy targets (deploy/): the key that encrypts environment credentials at rest. No default here:
# local.py and test.py set one; production reads ROLLGATE_CREDENTIALS_KEY or ROLLGATE_CREDENTIALS_KEY_FILE.
ROLLGATE_CREDENTIALS_KEY = env_secret("ROLLGATE_CREDENTIALS_KEY", default="")
# --- SLA gate (sla app) ---------------------------------------------------------------------------------------
# How often the ramp controller evaluates gray releases (seconds; a few seconds for demos). Each policy's
# evaluation_interval_s decides how often a snapshot is stored and how long a phase lasts at least.
SLA_GATE_INTERVAL_SECONDS = env.float("SLA_GATE_INTERVAL_SECONDS", default=30.0)
SLA_PROMETHEUS_TIMEOUT_SECONDS = env.float("SLA_PROMETHEUS_TIMEOUT_SECONDS", default=5.0)
SLA_HISTORY_RETENTION_DAYS = env.float("SLA_HISTORY_RETENTION_DAYS", default=14.0)  # chart samples; reports stay
CELERY_BEAT_SCHEDULE["sla.evaluate_gray_releases"] = {
    "task": "sla.evaluate_gray_releases", "schedule": SLA_GATE_INTERVAL_SECONDS,
    "options": {"expires": SLA_GATE_INTERVAL_SECONDS},
}
CELERY_BEAT_SCHEDULE["sla.prune_history"] = {"task": "sla.prune_history", "schedule": 3600.0}
# --- Pipelines (issue 3): stages as Celery tasks, logs, triggers -------------------------------------------------
# Log lines older than this are pruned by the beat task pipelines.prune_stage_logs.
ROLLGATE_PIPELINE_LOG_RETENTION_DAYS = env.int("ROLLGATE_PIPELINE_LOG_RETENTION_DAYS", default=7)
# A running stage past its limit (seconds) is failed by the reaper (pipelines.reap_stale_stages).
ROLLGATE_PIPELINE_STAGE_TIME_LIMITS = env.json("ROLLGATE_PIPELINE_STAGE_TIME_LIMITS", default={
    "prepare": 300, "build": 1800, "scan": 900, "push": 900, "deploy": 1800})
ROLLGATE_PIPELINE_PUSH_ATTEMPTS = env.int("ROLLGATE_PIPELINE_PUSH_ATTEMPTS", default=3)
# A push attempt whose stream shows no progress for this long (a registry that hangs) fails and is tried again.
ROLLGATE_PIPELINE_PUSH_TIMEOUT_SECONDS = env.float("ROLLGATE_PIPELINE_PUSH_TIMEOUT_SECONDS", default=120.0)
ROLLGATE_PIPELINE_PUSH_BACKOFF_SECONDS = env.list("ROLLGATE_PIPELINE_PUSH_BACKOFF_SECONDS", cast=float,
                                                  default=[2.0, 5.0])
ROLLGATE_PIPELINE_MAX_IMAGE_BYTES = env.int("ROLLGATE_PIPELINE_MAX_IMAGE_BYTES", default=2 * 1024**3)
# A Trivy JSON report with this name in the build context is used when trivy itself is not installed.
ROLLGATE_PIPELINE_TRIVY_REPORT_NAME = env.str("ROLLGATE_PIPELINE_TRIVY_REPORT_NAME", default="trivy-report.json")
# Stage name -> dotted path of its runner, overriding the built-in ones (the benchmark registers no-op runners).
ROLLGATE_PIPELINE_RUNNERS = env.json("ROLLGATE_PIPELINE_RUNNERS", default={})
# Transient stage errors (engine unreachable, database hiccup) are retried this often, backoff doubling to the cap.
ROLLGATE_PIPELINE_TRANSIENT_RETRIES = env.int("ROLLGATE_PIPELINE_TRANSIENT_RETRIES", default=3)
ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS = env.float("ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS", default=60.0)
# Links in failure notifications point here.
ROLLGATE_PUBLIC_URL = env.str("ROLLGATE_PUBLIC_URL", default="http://127.0.0.1:8000")
# GitLab webhook: the X-Gitlab-Token secret (unset = the webhook answers 403), the user releases are created as,
# and GitLab project paths mapped to service names when a service's source_repository does not name the project.
ROLLGATE_GITLAB_WEBHOOK_TOKEN = env_secret("ROLLGATE_GITLAB_WEBHOOK_TOKEN", default="")
ROLLGATE_GITLAB_USER = env.str("ROLLGATE_GITLAB_USER", default="gitlab")
ROLLGATE_GITLAB_PROJECTS = env.json("ROLLGATE_GITLAB_PROJECTS", default={})
# Per-project webhook tokens (issue 14), stored hashed: {"group/agent-infer": {"token_sha256": "<hex>",
# "services": ["agent-infer"]}}, from ROLLGATE_GITLAB_PROJECT_TOKENS or the JSON file ROLLGATE_GITLAB_PROJECT_TOKENS_FILE.
# Once set, the shared ROLLGATE_GITLAB_WEBHOOK_TOKEN is refused.
ROLLGATE_GITLAB_PROJECT_TOKENS = env.json("ROLLGATE_GITLAB_PROJECT_TOKENS", default={})
if env.str("ROLLGATE_GITLAB_PROJECT_TOKENS_FILE", default=""):
    import json as _json

    ROLLGATE_GITLAB_PROJECT_TOKENS = _json.loads(Path(env.str("ROLLGATE_GITLAB_PROJECT_TOKENS_FILE")).read_text())
# The benchmark runs its workers on a queue of its own so it never takes (or leaves) anyone else's messages.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE.update({
    "pipelines-reap-stale-stages": {"task": "pipelines.reap_stale_stages", "schedule": 60.0},
    "pipelines-prune-stage-logs": {"task": "pipelines.prune_stage_logs", "schedule": 3600.0},
})
# --- Durable work (issue 13; README "Durable work", docs/ARCHITECTURE.md) ---------------------------------------
# These numbers work together; pipelines/checks.py refuses a combination that cannot work (manage.py check, and
# every worker and beat at start-up):
# - a worker beats every HEARTBEAT_STALE/4 s while it runs a stage or rollout; after HEARTBEAT_STALE s without a
#   beat the work may be taken over. A pool process that dies has its message back at once and that delivery takes
#   over then; a whole worker that dies is found by the sweeper (every SWEEP_INTERVAL s), so a take-over comes at
#   most HEARTBEAT_STALE + SWEEP_INTERVAL s after the kill (20 s as shipped).
# - work queued and not claimed for REDRIVE_AFTER s (its message lost with Redis) is queued again, then after
#   twice that, ..., up to REDRIVE_MAX_BACKOFF s.
# - Redis hands a message that was never acknowledged to another worker after the visibility timeout. Tasks wait in
#   a worker, unacknowledged, until their countdown (retries, take-over checks): the timeout must be longer than any
#   of those, or they are delivered twice while they wait. The sweeper, not this timeout, finds lost work.
ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS = env.float("ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS", default=15.0)
ROLLGATE_SWEEP_INTERVAL_SECONDS = env.float("ROLLGATE_SWEEP_INTERVAL_SECONDS", default=5.0)
ROLLGATE_REDRIVE_AFTER_SECONDS = env.float("ROLLGATE_REDRIVE_AFTER_SECONDS", default=30.0)
ROLLGATE_REDRIVE_MAX_BACKOFF_SECONDS = env.float("ROLLGATE_REDRIVE_MAX_BACKOFF_SECONDS", default=600.0)
# A stage or rollout whose workers were lost this many times fails with the reason instead of being taken over.
ROLLGATE_WORK_MAX_ATTEMPTS = env.int("ROLLGATE_WORK_MAX_ATTEMPTS", default=6)
# A rolled-back or blocked release whose cut never reached the target is cut again only this long after it stopped
# (and only while no later rollout of its service and environment exists).
ROLLGATE_RECONCILE_CUT_WINDOW_SECONDS = env.float("ROLLGATE_RECONCILE_CUT_WINDOW_SECONDS", default=3600.0)
# How long a worker keeps trying to record an outcome while the database is unreachable (a restart, a failover).
ROLLGATE_DATABASE_OUTAGE_BUDGET_SECONDS = env.float("ROLLGATE_DATABASE_OUTAGE_BUDGET_SECONDS", default=120.0)
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = 3600
CELERY_BROKER_TRANSPORT_OPTIONS.update(env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={}))
# Publishing while Redis is down: a few quick tries, then the send gives up (the committed change stands and the
# sweeper sends the work later) instead of holding a web request for long.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3,
                                    "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The gate queue: the SLA gate, traffic moves and the sweepers, short tasks that must never wait behind a build.
# Its own worker process consumes it (Procfile "gate"; compose and k8s "gate-worker"); builds and rollouts stay on
# the default queue ("worker").
ROLLGATE_GATE_QUEUE = env.str("ROLLGATE_GATE_QUEUE", default="gate")
CELERY_TASK_ROUTES = {name: {"queue": ROLLGATE_GATE_QUEUE} for name in (
    "sla.evaluate_gray_releases", "deploy.set_weight", "deploy.go_live", "deploy.roll_back", "deploy.rollout_cancel",
    "deploy.revision_rollback", "deploy.scale_down_idle", "pipelines.sweep", "deploy.sweep")}
CELERY_BEAT_SCHEDULE.update({
    "pipelines-sweep": {"task": "pipelines.sweep", "schedule": ROLLGATE_SWEEP_INTERVAL_SECONDS,
                        "options": {"expires": ROLLGATE_SWEEP_INTERVAL_SECONDS * 2}},
    "deploy-sweep": {"task": "deploy.sweep", "schedule": ROLLGATE_SWEEP_INTERVAL_SECONDS,
                     "options": {"expires": ROLLGATE_SWEEP_INTERVAL_SECONDS * 2}},
})
# Credential files (TargetCredential kinds *_file) may only be read from these directories.
ROLLGATE_CREDENTIAL_FILE_DIRS = env.list("ROLLGATE_CREDENTIAL_FILE_DIRS", default=["/run/secrets", "/var/run/secrets"])
# Shared cache (login throttling counts across web processes).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                      "KEY_PREFIX": "rollgate"}}
# --- Notifications (issue 18): release events to chat and webhooks -----------------------------------------------
# Each delivery is tried up to ROLLGATE_NOTIFY_MAX_ATTEMPTS times, waiting base * 2^(n-1) seconds (capped) between.
ROLLGATE_NOTIFY_MAX_ATTEMPTS = env.int("ROLLGATE_NOTIFY_MAX_ATTEMPTS", default=6)
ROLLGATE_NOTIFY_BACKOFF_SECONDS = env.float("ROLLGATE_NOTIFY_BACKOFF_SECONDS", default=10.0)
ROLLGATE_NOTIFY_BACKOFF_CAP_SECONDS = env.float("ROLLGATE_NOTIFY_BACKOFF_CAP_SECONDS", default=900.0)
ROLLGATE_NOTIFY_TIMEOUT_SECONDS = env.float("ROLLGATE_NOTIFY_TIMEOUT_SECONDS", default=5.0)
# Re-drives deliveries whose queue message was lost and announces freeze windows starting and ending.
CELERY_BEAT_SCHEDULE["notifications.sweep"] = {"task": "notifications.sweep", "schedule": 60.0,
                                              "options": {"expires": 60.0}}

# === Issue 17: running Rollgate as platform teams run their tools ===============================================
# (one block, additive: Alertmanager receiver, Prometheus client options, own metrics and logs, proxy settings, SSO)
INSTALLED_APPS += ["alerts"]  # noqa: F405 — the Alertmanager receiver (alerts/)

# --- Alertmanager receiver: POST /api/alerts/alertmanager ---------------------------------------------------------
# Alertmanager's webhook_config sends "Authorization: Bearer <this>" (http_config.authorization.credentials).
# Unset: the receiver answers 403.
ROLLGATE_ALERTMANAGER_TOKEN = env_secret("ROLLGATE_ALERTMANAGER_TOKEN", default="")
# Which alert labels name the service, the environment and (optionally) the version a canary runs.
ROLLGATE_ALERTMANAGER_LABELS = {"service": "service", "environment": "env", "version": "version",
                                **env.json("ROLLGATE_ALERTMANAGER_LABELS", default={})}
# Alertmanager's "firing"/"resolved" is its own enum in the API schema (not one of the release statuses).
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {})["AlertStatusEnum"] = "alerts.models.AlertStatus"
# What a firing alert does to the matching canary, per environment ("*": every other one): pause or rollback.
ROLLGATE_ALERTMANAGER_ACTIONS = env.json("ROLLGATE_ALERTMANAGER_ACTIONS", default={"*": "pause"})
_bad_actions = {name: action for name, action in ROLLGATE_ALERTMANAGER_ACTIONS.items()
                if action not in ("pause", "rollback")}
if _bad_actions or not isinstance(ROLLGATE_ALERTMANAGER_ACTIONS, dict):
    raise RuntimeError(f"ROLLGATE_ALERTMANAGER_ACTIONS: each environment's action must be pause or rollback, got "
                       f"{_bad_actions}")
if set(ROLLGATE_ALERTMANAGER_LABELS) != {"service", "environment", "version"}:
    raise RuntimeError("ROLLGATE_ALERTMANAGER_LABELS: keys are service, environment and version (values: label "
                       f"names), got {sorted(ROLLGATE_ALERTMANAGER_LABELS)}")

# --- Prometheus access (SLA gate): TLS verified by default, auth, headers, one Prometheus per environment ---------
# PROMETHEUS_URL (above) is the default. A private CA: PROMETHEUS_CA_BUNDLE=/path/ca.pem. PROMETHEUS_TLS_VERIFY=false
# only for a lab. Auth: PROMETHEUS_BEARER_TOKEN(_FILE), or PROMETHEUS_USERNAME + PROMETHEUS_PASSWORD(_FILE).
# PROMETHEUS_HEADERS='{"X-Scope-OrgID": "team-a"}' adds headers to every query.
PROMETHEUS_TLS_VERIFY = env.bool("PROMETHEUS_TLS_VERIFY", default=True)
PROMETHEUS_CA_BUNDLE = env.str("PROMETHEUS_CA_BUNDLE", default="")
PROMETHEUS_BEARER_TOKEN = env_secret("PROMETHEUS_BEARER_TOKEN", default="")
PROMETHEUS_USERNAME = env.str("PROMETHEUS_USERNAME", default="")
PROMETHEUS_PASSWORD = env_secret("PROMETHEUS_PASSWORD", default="")
PROMETHEUS_HEADERS = env.json("PROMETHEUS_HEADERS", default={})
# Per environment (clusters usually have one Prometheus each), any of: url, tls_verify, ca_bundle, bearer_token_file,
# username, password_file, headers; what an environment leaves out comes from the PROMETHEUS_* defaults above.
# ROLLGATE_PROMETHEUS_ENVIRONMENTS='{"prod": {"url": "https://prometheus.prod:9090", "ca_bundle": "/etc/ca.pem",
#   "bearer_token_file": "/run/secrets/prom-prod"}}'  (or the same JSON in the file ROLLGATE_PROMETHEUS_ENVIRONMENTS_FILE)
ROLLGATE_PROMETHEUS_ENVIRONMENTS = env.json("ROLLGATE_PROMETHEUS_ENVIRONMENTS", default={})
if env.str("ROLLGATE_PROMETHEUS_ENVIRONMENTS_FILE", default=""):
    import json as _json

    ROLLGATE_PROMETHEUS_ENVIRONMENTS = _json.loads(Path(env.str("ROLLGATE_PROMETHEUS_ENVIRONMENTS_FILE")).read_text())

# --- Rollgate's own observability: /metrics, health, structured logs --------------------------------------------
INSTALLED_APPS += ["observability"]  # noqa: F405 — /metrics, /api/health/live, /api/health/ready
# Request id, actor and release id on every log line of a request (after authentication: it names the user).
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                  "config.logs.RequestContextMiddleware")
# One JSON object per log line (timestamp, level, logger, event, request_id, release_id, actor); "console" for people.
ROLLGATE_LOG_FORMAT = env.str("ROLLGATE_LOG_FORMAT", default="json")
from config.logs import logging_config  # noqa: E402

LOGGING = logging_config(fmt=ROLLGATE_LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # workers log through LOGGING too (JSON), not Celery's own format
# The Celery queues whose length /metrics reports (the lead's issue 13 adds "gate" for the SLA gate and traffic).
ROLLGATE_METRICS_QUEUES = env.list("ROLLGATE_METRICS_QUEUES", default=["celery", "gate"])

# --- Proxies and TLS (README, "Deploy on Kubernetes"): one list of trusted proxies for uvicorn and Django ----------
# uvicorn reads FORWARDED_ALLOW_IPS itself (its --forwarded-allow-ips); when ROLLGATE_TRUSTED_PROXIES is unset, the
# same list is Rollgate's, so the two layers never disagree about who may set X-Forwarded-For / -Proto.
if not ROLLGATE_TRUSTED_PROXIES and env.str("FORWARDED_ALLOW_IPS", default="") not in ("", "*"):
    ROLLGATE_TRUSTED_PROXIES = env.list("FORWARDED_ALLOW_IPS")

# --- Single sign-on: OpenID Connect (mozilla-django-oidc; releases/sso.py). Local accounts keep working. ---------
# On when OIDC_RP_CLIENT_ID is set. The provider's endpoints come from its discovery document
# (<issuer>/.well-known/openid-configuration): authorization, token, userinfo and jwks.
ROLLGATE_OIDC_ENABLED = bool(env.str("OIDC_RP_CLIENT_ID", default=""))
ROLLGATE_OIDC_PROVIDER_NAME = env.str("ROLLGATE_OIDC_PROVIDER_NAME", default="single sign-on")
ROLLGATE_OIDC_USERNAME_CLAIM = env.str("ROLLGATE_OIDC_USERNAME_CLAIM", default="preferred_username")
# The claim holding the person's groups, and which Rollgate role each group gives:
# ROLLGATE_OIDC_ROLE_MAP='{"release-managers": "release_manager", "sre": "ops", "qa": "qa"}'
ROLLGATE_OIDC_ROLE_CLAIM = env.str("ROLLGATE_OIDC_ROLE_CLAIM", default="groups")
ROLLGATE_OIDC_ROLE_MAP = env.json("ROLLGATE_OIDC_ROLE_MAP", default={})
if ROLLGATE_OIDC_ENABLED:
    INSTALLED_APPS += ["mozilla_django_oidc"]  # noqa: F405
    AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "releases.sso.RollgateOIDCBackend"]
    OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = env_secret("OIDC_RP_CLIENT_SECRET", default="")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT")
    OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
    OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default=f"openid email profile {ROLLGATE_OIDC_ROLE_CLAIM}")
    OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", default=True)
    OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=10.0)
    LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
