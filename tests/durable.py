"""Helpers for the durable-work tests (issue 13): a broker that loses what it holds, and a clock for the sweepers.

``lost_messages()`` queues for real (Celery publishes to this run's Redis db), then empties that db when the block
ends: the messages are gone exactly as after a Redis restart without persistence. ``eager()`` runs what is queued
in-process, through the real tasks, as a worker would.
"""
import contextlib
import datetime as dt

import redis
from django.conf import settings
from django.utils import timezone

from config.celery_app import app as celery_app


@contextlib.contextmanager
def eager():
    before = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = before


@contextlib.contextmanager
def lost_messages():
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    broker = redis.Redis.from_url(settings.REDIS_URL)
    try:
        yield broker
    finally:
        celery_app.conf.task_always_eager = before
        broker.flushdb()  # what Redis held is gone


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)
