"""The websocket every open page keeps: it relays live events the user's role may see.

Anonymous connections are refused (close code 4401), users without a role too (4403). A socket closes when its
session logs out or expires (4401) and when its user's roles change (4409: the page reconnects). A page may subscribe to
more groups (`{"subscribe": "release.42"}`); each join is checked against the policy.
"""
import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from frontend import live
from releases import events, metrics


class _OpenSockets:
    """This process's open sockets, published for /metrics (rollgate_live_sockets sums every process). Republished
    every 30 s while the process lives, so the entry of a process that died goes stale and stops counting."""

    count = 0
    _refresher: asyncio.Task | None = None

    @classmethod
    async def changed(cls, delta: int) -> None:
        cls.count += delta
        await asyncio.to_thread(metrics.process_gauge_set, "live_sockets", cls.count)
        if cls._refresher is None or cls._refresher.done():
            cls._refresher = asyncio.get_running_loop().create_task(cls._refresh())

    @classmethod
    async def _refresh(cls) -> None:
        while cls.count > 0:
            await asyncio.sleep(30)
            await asyncio.to_thread(metrics.process_gauge_set, "live_sockets", cls.count)


class LiveEventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.joined: set[str] = set()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        groups = await database_sync_to_async(live.default_groups)(user)
        if not groups:
            await self.close(code=4403)
            return
        await self.accept()
        self.counted = True
        await _OpenSockets.changed(+1)
        for group in groups:
            await self._join(group)
        # Control groups: logout of this session, or a role change of this user, closes the socket.
        self.control = [events.user_group(user.pk)]
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key:
            self.control.append(events.session_group(session_key))
        for group in self.control:
            await self.channel_layer.group_add(group, self.channel_name)
        self.expires_at = await database_sync_to_async(live.session_expires_at)(session_key)
        await self.send_json({"type": "hello", "groups": sorted(self.joined)})

    async def _session_over(self) -> bool:
        """A session that expired without a logout: close at the next message either way."""
        if self.expires_at is not None and timezone.now() >= self.expires_at:
            await self.close(code=4401)
            return True
        return False

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.add(group)

    async def receive_json(self, content, **kwargs):
        if await self._session_over():
            return
        group = content.get("subscribe") if isinstance(content, dict) else None
        if not isinstance(group, str):
            await self.send_json({"type": "error", "detail": 'send {"subscribe": "release.<id>"}'})
            return
        if await database_sync_to_async(live.may_join)(self.scope["user"], group):
            await self._join(group)
            await self.send_json({"type": "subscribed", "group": group})
        else:
            await self.send_json({"type": "error", "detail": f"not allowed to follow {group[:60]}"})

    async def disconnect(self, code):
        if getattr(self, "counted", False):
            self.counted = False
            await _OpenSockets.changed(-1)
        for group in [*getattr(self, "joined", ()), *getattr(self, "control", ())]:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def rollgate_event(self, message):
        if await self._session_over():
            return
        kind = message["event"].get("type")
        if kind == events.SESSION_ENDED:
            await self.close(code=4401)  # logged out: the page goes to the login form
        elif kind == events.ROLES_CHANGED:
            await self.close(code=4409)  # the page reconnects, and connect() re-checks the new roles
        else:
            await self.send_json(message["event"])
