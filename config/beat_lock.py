"""One Celery beat at a time: a lease in Redis that beat must hold before it schedules anything.

Two beats (a second replica, a rolling update that overlaps, a developer's `make serve` against the shared Redis)
would each send every periodic task, and the SLA gate would judge every canary twice per tick. So when beat starts
(the beat_init signal, config/celery_app.py) it takes the lease `<prefix>:beat-lease` (SET NX with a TTL) or waits
as a standby until the holder stops renewing; the holder renews every third of the TTL from a thread and exits the
process at once if another beat holds the lease, so at most one beat schedules at any time. While Redis is
unreachable nobody can take the lease (or send tasks); a lease that Redis lost in a restart is taken back. `python -m
config.beat_lock --check` is the container health check: healthy while this process holds the lease or stands by.
"""
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

LEASE_SECONDS = float(os.environ.get("ROLLGATE_BEAT_LEASE_SECONDS", "30"))
STATE_FILE = Path(os.environ.get("ROLLGATE_BEAT_STATE_FILE", "/tmp/rollgate-beat-state"))
# Renew the lease by compare-and-set: the holder's own token extends it (1); a lease that vanished (Redis restarted
# without persistence) is taken back (2); another beat's token means this one lost it (0).
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""


def lease_key() -> str:
    from django.conf import settings

    return f"{settings.ROLLGATE_CHANNEL_PREFIX}:beat-lease"


def _client():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


def _note(state: str) -> None:
    try:
        STATE_FILE.write_text(f"{state} {time.time():.0f}\n")
    except OSError:
        pass


def acquire(*, token: str | None = None, wait: bool = True, log=print, max_wait_s: float | None = None) -> str | None:
    """Take the lease (returns its token), standing by while another beat holds it."""
    token = token or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    client, key = _client(), lease_key()
    started, announced = time.monotonic(), False
    while True:
        if client.set(key, token, nx=True, px=int(LEASE_SECONDS * 1000)):
            _note("holder")
            return token
        if not wait or (max_wait_s is not None and time.monotonic() - started > max_wait_s):
            return None
        if not announced:
            holder = client.get(key)
            log(f"beat: another beat holds the lease ({holder.decode() if holder else '?'}); standing by")
            announced = True
        _note("standby")
        time.sleep(min(5.0, LEASE_SECONDS / 3))


def renew(token: str) -> bool:
    return bool(_client().eval(_RENEW, 1, lease_key(), token, int(LEASE_SECONDS * 1000)))


def release(token: str) -> None:
    _client().eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
                   1, lease_key(), token)


def keep(token: str, *, on_lost=None) -> threading.Thread:
    """Renew the lease from a daemon thread; on_lost (default: exit the process) when another beat holds it."""

    def lost():
        print("beat: another beat holds the lease; stopping so that only one beat schedules", file=sys.stderr,
              flush=True)
        os._exit(3)

    def loop():
        while True:
            time.sleep(LEASE_SECONDS / 3)
            try:
                if not renew(token):
                    return (on_lost or lost)()
                _note("holder")
            except Exception:  # noqa: BLE001 - Redis unreachable: nobody can take the lease; try again
                continue

    thread = threading.Thread(target=loop, name="beat-lease", daemon=True)
    thread.start()
    return thread


def check() -> int:
    """Health: this container's beat holds the lease or stands by, and said so within the last lease period."""
    try:
        state, at = STATE_FILE.read_text().split()
    except (OSError, ValueError):
        return 1
    return 0 if state in ("holder", "standby") and time.time() - float(at) < LEASE_SECONDS * 2 else 1


if __name__ == "__main__":
    sys.exit(check() if "--check" in sys.argv else 2)
