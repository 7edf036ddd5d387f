"""Live events are namespaced per deployment, and an open socket does not outlive its session or its roles."""
import importlib

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore

from frontend.consumers import LiveEventsConsumer
from releases.choices import Role
from releases.services import session_ended

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user, session=None):
    communicator = WebsocketCommunicator(LiveEventsConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = user
    if session is not None:
        communicator.scope["session"] = session
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    return communicator


async def closed_with(communicator, timeout=5.0) -> int:
    output = await communicator.receive_output(timeout=timeout)
    assert output["type"] == "websocket.close", output
    return output["code"]


@pytest.mark.asyncio
async def test_logging_out_closes_that_sessions_sockets_only(qa):
    session, other = SessionStore(), SessionStore()
    await sync_to_async(session.create)()
    await sync_to_async(other.create)()
    this_tab = await connect(qa, session)
    other_browser = await connect(qa, other)

    await sync_to_async(session_ended)(session_key=session.session_key)

    assert await closed_with(this_tab) == 4401
    assert await other_browser.receive_nothing(timeout=0.5)
    await other_browser.disconnect()


@pytest.mark.asyncio
async def test_logout_through_the_page_closes_the_socket(qa):
    from django.test import AsyncClient

    client = AsyncClient()
    await sync_to_async(client.force_login)(qa)
    session = SessionStore(session_key=client.cookies["sessionid"].value)
    socket = await connect(qa, session)
    await client.post("/logout/")
    assert await closed_with(socket) == 4401


@pytest.mark.asyncio
async def test_losing_a_role_closes_the_users_sockets(qa):
    socket = await connect(qa)
    await sync_to_async(lambda: qa.groups.remove(Group.objects.get(name=Role.QA)))()
    assert await closed_with(socket) == 4409


def test_two_deployments_on_one_redis_server_get_different_prefixes(monkeypatch):
    import config.settings.base as base

    prefixes = set()
    for url in ("postgres://postgres@127.0.0.1:5432/rollgate_a", "postgres://postgres@127.0.0.1:5432/rollgate_b"):
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.delenv("ROLLGATE_CHANNEL_PREFIX", raising=False)
        reloaded = importlib.reload(base)
        prefixes.add(reloaded.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"])
    monkeypatch.undo()
    importlib.reload(base)
    assert len(prefixes) == 2


@pytest.mark.asyncio
async def test_events_of_another_deployment_never_arrive(qa, settings, live_release):
    from channels.layers import get_channel_layer

    from config.settings.base import channel_layers
    from releases import events

    socket = await connect(qa)
    other = channel_layers(settings.REDIS_URL, "rollgate.other-deployment")["default"]
    from channels_redis.pubsub import RedisPubSubChannelLayer

    foreign = RedisPubSubChannelLayer(**other["CONFIG"])
    await foreign.group_send(events.FLEET_GROUP, {"type": "rollgate.event", "event": {"type": "release.changed"}})
    assert await socket.receive_nothing(timeout=0.5)
    await get_channel_layer().group_send(events.FLEET_GROUP,
                                         {"type": "rollgate.event", "event": {"type": "release.changed"}})
    assert (await socket.receive_json_from(timeout=5))["type"] == "release.changed"
    await foreign.flush()
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_socket_closes_once_its_session_has_expired(qa, live_release):
    import asyncio
    from datetime import timedelta

    from channels.layers import get_channel_layer
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from releases import events

    session = SessionStore()
    await sync_to_async(session.create)()
    # The session runs out a moment after the socket opens (no logout ever happens).
    await sync_to_async(lambda: Session.objects.filter(session_key=session.session_key).update(
        expire_date=timezone.now() + timedelta(seconds=1)))()
    socket = await connect(qa, session)
    await asyncio.sleep(1.2)
    await get_channel_layer().group_send(events.FLEET_GROUP,
                                         {"type": "rollgate.event", "event": {"type": "release.changed"}})
    assert await closed_with(socket) == 4401
