"""Shared habits of durable work (issue 13, docs/ARCHITECTURE.md "Durable work"): when to send lost work again, and
how to ride out a database blip in a worker.

The sweepers (pipelines/sweeper.py, deploy/sweeper.py) find queued work whose message was lost from the rows and
send it again after ``redrive_delay``. Workers wrap the bookkeeping that records an outcome already achieved (a
stage that ran, a rollout the target finished) in ``retry_while_database_is_down``, so a database restart during
a build neither reports the stage as lost nor turns a deploy that succeeded into a failure.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

log = logging.getLogger("rollgate.durable")
T = TypeVar("T")

# Errors that say "the database is not there right now", as opposed to a bug or a constraint.
DATABASE_DOWN = (OperationalError, InterfaceError)


class CommitOutcomeUnknown(OperationalError):
    """The connection broke during COMMIT and the database could not be asked whether the write was stored
    (raised by Rollgate's PostgreSQL backend, config/postgres/base.py)."""


def redrive_delay(redrives: int) -> float:
    """Seconds to wait before sending a row's work again after it was sent ``redrives`` extra times already:
    ROLLGATE_REDRIVE_AFTER_SECONDS, then twice that, ... up to ROLLGATE_REDRIVE_MAX_BACKOFF_SECONDS. A queue that
    is merely long (builds ahead) gets a few duplicates, not one per sweep; a duplicate finds nothing to claim."""
    first = settings.ROLLGATE_REDRIVE_AFTER_SECONDS
    return min(settings.ROLLGATE_REDRIVE_MAX_BACKOFF_SECONDS, first * 2 ** min(redrives, 16))


def redrive_due(queued_at: dt.datetime | None, redrives: int, now: dt.datetime) -> bool:
    """Is a row's work due to be sent again: never queued, or queued longer ago than ``redrive_delay``?"""
    return queued_at is None or (now - queued_at).total_seconds() >= redrive_delay(redrives)


class SweepReport:
    """What a sweep did, one list of ids per kind of repair. Subclasses are dataclasses whose fields are those
    lists; ``as_dict`` is what the sweep task logs and returns, ``total`` how many rows it touched."""

    def as_dict(self) -> dict[str, list[int]]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.as_dict().values())


def reconnect() -> None:
    """Drop this thread's connection if it broke, so the next query opens a new one (Django does this between
    requests, never inside a long worker task)."""
    close_old_connections()
    if connection.connection is not None and not connection.is_usable():
        connection.close()


def retry_while_database_is_down(call: Callable[[], T], *, what: str, budget_s: float | None = None) -> T:
    """Run ``call``; while it fails because the database is unreachable, reconnect and try again with backoff for
    up to ``budget_s`` (ROLLGATE_DATABASE_OUTAGE_BUDGET_SECONDS). Other errors, and the last outage error, raise."""
    budget = settings.ROLLGATE_DATABASE_OUTAGE_BUDGET_SECONDS if budget_s is None else budget_s
    deadline = time.monotonic() + budget
    pause = 0.25
    while True:
        try:
            return call()
        except DATABASE_DOWN as error:
            connection.close()  # a broken connection stays broken; the next try opens a new one
            if time.monotonic() + pause > deadline:
                raise
            log.warning("%s: database unavailable (%s); trying again in %.1f s", what, error, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
