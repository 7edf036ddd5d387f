"""Live events for open browsers. Only the service layer calls `send_event_on_commit`.

Events carry a type and ids, never whole objects: the page re-renders its partial. They are sent after the
transaction commits, so a browser never sees a state that was rolled back.
"""
import asyncio
import hashlib
import logging
import os
import re
import threading

from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

# Groups a browser may be in. Membership is decided by the websocket consumer through releases.policy.
FLEET_GROUP = "fleet"  # every release / environment change; needs release.view
AUDIT_GROUP = "audit"  # every audit row; needs audit.view

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def group_name(*parts: object) -> str:
    """Build a channel-layer group name from parts: group_name("release", 42) -> "release.42"."""
    name = ".".join(_UNSAFE.sub("-", str(part)) for part in parts)
    return name[:99]


def release_group(release_id: int) -> str:
    return group_name("release", release_id)


def user_group(user_id: int) -> str:
    """Every socket of one user: closed when the user's roles change (the page reconnects with the new ones)."""
    return group_name("user", user_id)


def session_group(session_key: str) -> str:
    """The sockets of one login session: closed when it logs out. The key is hashed: group names are visible in
    Redis and a session key is a credential."""
    return group_name("session", hashlib.sha256(session_key.encode()).hexdigest()[:32])


# Event types the consumer acts on itself (it closes the socket) instead of relaying them to the page.
SESSION_ENDED = "session.ended"
ROLES_CHANGED = "session.roles_changed"


_sender_lock = threading.Lock()
_sender: tuple[int, asyncio.AbstractEventLoop] | None = None


def _sender_loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop per process for sending events (pipelines: many log lines per stage).

    async_to_sync would start a new loop, and so a new Redis connection, for every event (~8 ms each); this loop
    keeps the channel layer's connection. Re-created after a fork (Celery prefork children)."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-events", daemon=True).start()
            _sender = (os.getpid(), loop)
        return _sender[1]


def send_event(groups: list[str], event_type: str, payload: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "rollgate.event", "event": {"type": event_type, **payload}}
    for group in groups:
        try:
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _sender_loop()).result(timeout=2)
        except Exception:  # a live event must never undo, fail or hold up a committed change (pages also poll)
            log.warning("live event %s to %s not delivered", event_type, group, exc_info=True)


def send_event_on_commit(groups: list[str], event_type: str, payload: dict) -> None:
    transaction.on_commit(lambda: send_event(groups, event_type, payload), robust=True)


def send_events(batch: list[tuple[list[str], str, dict]]) -> None:
    """Many events at once (the SLA gate's verdicts of one tick): sent concurrently on the sender loop, one wait
    for all instead of one round trip each."""
    layer = get_channel_layer()
    if layer is None or not batch:
        return

    async def send_all():
        sends = [layer.group_send(group, {"type": "rollgate.event", "event": {"type": event_type, **payload}})
                 for groups, event_type, payload in batch for group in groups]
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning("live event not delivered: %s", outcome)

    try:
        asyncio.run_coroutine_threadsafe(send_all(), _sender_loop()).result(timeout=10)
    except Exception:  # a live event must never undo, fail or hold up a committed change (pages also poll)
        log.warning("%d live events not delivered", len(batch), exc_info=True)
