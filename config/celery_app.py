import os

from celery import Celery

# Production unless told otherwise: `make run`/`make test` choose local/test settings themselves.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("rollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
