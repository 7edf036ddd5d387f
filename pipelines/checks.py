"""Start-up check of the durable-work settings (issue 13): the heartbeat, the sweeper, the retries and the broker's
visibility timeout must fit together, or a crashed worker's stage is never taken over in time (or its message is
delivered twice while it waits). Run by `manage.py check` (and so by migrate) and by every Celery worker and beat
at start-up (config/celery_app.py), which refuse to start on an error."""
from django.conf import settings
from django.core import checks

TAG = "rollgate_durable"
TAKEOVER_GOAL_S = 30.0


@checks.register(TAG)
def durable_work_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    stale = float(settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS)
    sweep = float(settings.ROLLGATE_SWEEP_INTERVAL_SECONDS)
    redrive = float(settings.ROLLGATE_REDRIVE_AFTER_SECONDS)
    backoff_cap = float(settings.ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS)
    visibility = float((settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}).get("visibility_timeout", 3600))
    limits = settings.ROLLGATE_PIPELINE_STAGE_TIME_LIMITS

    def error(msg: str, hint: str, n: int) -> None:
        errors.append(checks.Error(msg, hint=hint, id=f"rollgate.E1{n:02d}"))

    if stale < 2:
        error(f"ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS is {stale:g}: workers beat every stale/4 s, and a database "
              f"round trip must fit in a beat", "use 2 s or more (15 as shipped)", 1)
    if sweep <= 0 or sweep > stale:
        error(f"ROLLGATE_SWEEP_INTERVAL_SECONDS ({sweep:g}) must be above 0 and at most the heartbeat staleness "
              f"({stale:g} s): a take-over comes up to stale + sweep seconds after a worker dies",
              "5 s as shipped", 2)
    if redrive < stale:
        error(f"ROLLGATE_REDRIVE_AFTER_SECONDS ({redrive:g}) is shorter than the heartbeat staleness ({stale:g} s): "
              f"work would be queued again while a healthy worker is about to claim it", "30 s as shipped", 3)
    longest_wait = max(backoff_cap, stale + 1, redrive)
    if visibility < 2 * longest_wait:
        error(f"the broker's visibility_timeout ({visibility:g} s) must be at least twice the longest countdown a "
              f"task waits with its message unacknowledged ({longest_wait:g} s), or Redis delivers it twice",
              f"set CELERY_BROKER_TRANSPORT_OPTIONS visibility_timeout to {2 * longest_wait:g} or more "
              f"(3600 as shipped)", 4)
    short = sorted(name for name, limit in limits.items() if float(limit) <= stale)
    if short:
        error(f"stage time limits of {', '.join(short)} are not longer than the heartbeat staleness ({stale:g} s)",
              "raise ROLLGATE_PIPELINE_STAGE_TIME_LIMITS", 5)
    if not errors and stale + sweep > TAKEOVER_GOAL_S:
        errors.append(checks.Warning(
            f"a crashed worker's work is taken over up to {stale + sweep:g} s after it dies (heartbeat staleness "
            f"{stale:g} s + sweep interval {sweep:g} s), later than {TAKEOVER_GOAL_S:g} s",
            hint="lower ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS or ROLLGATE_SWEEP_INTERVAL_SECONDS",
            id="rollgate.W101"))
    return errors
