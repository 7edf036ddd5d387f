"""Tell waiting long-polls that a routing table changed, across every web process, through Redis pub/sub.

Publishers (routing services, the release_transitioned receiver) call ``publish_change`` after commit. Each web
process runs one subscriber task (``ChangeHub``) on its event loop and wakes the long-polls waiting for that
service and environment, so N connected schedulers cost one Redis connection per process, not N.
"""
from __future__ import annotations

import asyncio
import logging
import threading

import redis
import redis.asyncio as aioredis
from django.conf import settings

log = logging.getLogger(__name__)

def channel() -> str:
    """Per deployment (ROLLGATE_CHANNEL_PREFIX): Redis pub/sub ignores the db number."""
    return f"{settings.ROLLGATE_CHANNEL_PREFIX}:routing:changed"

_sync_lock = threading.Lock()
_sync_client: redis.Redis | None = None


def sync_redis() -> redis.Redis:
    global _sync_client
    with _sync_lock:
        if _sync_client is None:
            _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        return _sync_client


def table_key(service: str, environment: str) -> str:
    return f"{service}/{environment}"


def publish_change(service: str, environment: str) -> None:
    """Wake every long-poll for this table. Never raises: the change is committed; clients re-check on timeout."""
    try:
        sync_redis().publish(channel(), table_key(service, environment))
    except redis.RedisError:
        log.warning("routing change of %s/%s not published; long-polls see it at their next re-check",
                    service, environment, exc_info=True)


class ChangeHub:
    """One Redis subscription per event loop; waiters register a future per table key."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future]] = {}
        self._task: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._subscribed.clear()
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="rollgate-routing-hub")

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(channel())
                self._subscribed.set()
                delay = 0.2
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    key = message["data"].decode(errors="replace")
                    # A change may have happened while we were disconnected; everyone re-checks anyway.
                    self._wake(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis gone: waiters fall back to their periodic re-check
                log.warning("routing change subscription lost; retrying in %.1f s", delay, exc_info=True)
            finally:
                self._subscribed.clear()
                try:
                    await client.aclose()
                except Exception:  # noqa: BLE001
                    pass
            self._wake_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _wake(self, key: str) -> None:
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(True)

    def _wake_all(self) -> None:
        for key in list(self._waiters):
            self._wake(key)

    async def register(self, key: str, *, ready_timeout_s: float = 1.0) -> asyncio.Future:
        """A future that completes at the next change of `key`. Register BEFORE reading the table."""
        self._ensure_running()
        if not self._subscribed.is_set():
            try:
                await asyncio.wait_for(self._subscribed.wait(), ready_timeout_s)
            except asyncio.TimeoutError:
                pass  # Redis is slow or down: the caller's periodic re-check still bounds the delay
        future = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(future)
        return future

    def discard(self, key: str, future: asyncio.Future) -> None:
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(key, None)


_hubs: dict[asyncio.AbstractEventLoop, ChangeHub] = {}


def hub() -> ChangeHub:
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        for old in [other for other in _hubs if other.is_closed()]:
            del _hubs[old]
        found = _hubs[loop] = ChangeHub()
    return found
