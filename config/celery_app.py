import os

from celery import Celery
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
