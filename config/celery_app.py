import os

from celery import Celery, signals
from celery.signals import beat_init, worker_init

# Production unless told otherwise: `make run`/`make test` choose local/test settings themselves.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("rollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def refuse_incoherent_durable_settings(**kwargs) -> None:
    """Workers and beat start only when the durable-work settings fit together (pipelines/checks.py)."""
    from django.core import checks

    from pipelines.checks import TAG

    problems = checks.run_checks(tags=[TAG])
    for problem in problems:
        print(f"rollgate: {problem}", flush=True)
    if any(problem.is_serious() for problem in problems):
        raise SystemExit("rollgate: refusing to start: the durable-work settings do not fit together (see above)")


@signals.task_prerun.connect
def _log_context(task_id=None, task=None, kwargs=None, **_):
    """Every log line of a task carries its name, id and the release it works on (config/logs.py)."""
    from config.logs import bind_task_context

    bind_task_context(task_id=task_id or "", task_name=getattr(task, "name", ""), kwargs=kwargs)


@signals.task_success.connect
def _measure(sender=None, result=None, **_):
    """Breach to stable (/metrics): a stopped canary's traffic is back on the stable (observability/hooks.py)."""
    from observability.hooks import TRAFFIC_BACK, traffic_back_on_stable

    name = getattr(sender, "name", "")
    if name in TRAFFIC_BACK:
        request = sender.request
        release_id = (request.args or [None])[0] if request.args else (request.kwargs or {}).get("release_id")
        traffic_back_on_stable(task_name=name, release_id=release_id, result=result)


@signals.beat_init.connect  # after the settings check above (receivers run in the order they connect)
def _one_beat(sender=None, **_):
    """Only the beat holding the Redis lease schedules (config/beat_lock.py); others stand by until it is free."""
    import atexit

    from config.beat_lock import acquire, keep, release

    if os.environ.get("ROLLGATE_BEAT_LOCK", "1") == "0":
        return
    token = acquire()
    keep(token)
    atexit.register(release, token)  # a clean stop frees the lease at once (a crash: it expires)
