"""Structured logs (structlog): one JSON object per line with timestamp, level, logger, event, and the request id,
release id and actor of the work that logged it.

Every log line, Django's, Celery's and Rollgate's own (stdlib `logging` or structlog), goes through the same
ProcessorFormatter. Context travels in contextvars: the request middleware binds the request id (X-Request-ID from
the proxy, else a new one, echoed in the response), the actor and the release id of the URL; the Celery hooks bind
the task and its release id; releases.services.audit_record binds the actor and release it records.
ROLLGATE_LOG_FORMAT=console prints the same fields for people (the local settings' default).
"""
import re
import uuid

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# Fields that reach the log line from stdlib `extra=` (never secrets: only ids and names are passed this way).
_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, fmt: str, level: str) -> dict:
    """The LOGGING dict for Django; also configures structlog itself to hand its events to stdlib logging."""
    if fmt not in ("json", "console"):
        raise RuntimeError(f"ROLLGATE_LOG_FORMAT must be json or console, got {fmt!r}")
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"rollgate": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                           structlog.processors.format_exc_info, renderer],
            "foreign_pre_chain": [*_SHARED, structlog.stdlib.ExtraAdder()],
        }},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "rollgate"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.request": {"level": "ERROR"}, "axes": {"level": "WARNING"},
                    "django.server": {"level": "WARNING"}},
    }


class RequestContextMiddleware:
    """Binds request_id (and, once known, actor and release_id) for every log line of the request. After the
    authentication middleware; API token users are bound when their view runs (process_view sees DRF's user only
    later, so audit_record binds the acting user too)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        clear_contextvars()
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        bind_contextvars(request_id=request_id, method=request.method, path=request.path[:200])
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            bind_contextvars(actor=user.get_username())
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        if response.status_code >= 500:
            structlog.get_logger("rollgate.request").error("request failed", status=response.status_code)
        clear_contextvars()
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        release_id = view_kwargs.get("release_id")
        if release_id is not None:
            bind_contextvars(release_id=release_id)
        return None


def bind_task_context(*, task_id: str, task_name: str, kwargs: dict | None) -> None:
    """Celery task_prerun: a fresh context per task, with the release it works on when it says."""
    clear_contextvars()
    context = {"task": task_name, "task_id": task_id}
    release_id = (kwargs or {}).get("release_id")
    if release_id is not None:
        context["release_id"] = release_id
    bind_contextvars(**context)
