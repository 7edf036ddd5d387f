"""Live events over the real Redis channel layer, through the real websocket consumer."""
import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from frontend.consumers import LiveEventsConsumer
from releases.services import Actor, release_promote

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user):
    communicator = WebsocketCommunicator(LiveEventsConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def next_of_type(communicator, event_type: str, timeout: float = 5.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        message = await communicator.receive_json_from(timeout=max(remaining, 0.01))
        if message.get("type") == event_type:
            return message


async def collect(communicator, seconds: float) -> list[dict]:
    """Everything that arrives within `seconds` (other tests' fleet events may be among it)."""
    received = []
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if not await communicator.receive_nothing(timeout=0.1):
            received.append(await communicator.receive_json_from(timeout=1))
    return received


@pytest.mark.asyncio
async def test_anonymous_and_roleless_connections_are_refused(nobody):
    _, connected, code = await connect(AnonymousUser())
    assert (connected, code) == (False, 4401)
    _, connected, code = await connect(nobody)
    assert (connected, code) == (False, 4403)


@pytest.mark.asyncio
async def test_a_promotion_reaches_open_browsers_after_commit(live_release, make_release, rm, qa):
    release = await sync_to_async(make_release)("v1.1.0", "staging")
    watcher, connected, _ = await connect(qa)
    assert connected
    assert (await watcher.receive_json_from(timeout=5))["type"] == "hello"
    await sync_to_async(release_promote)(actor=Actor.of(rm), release_id=release.pk)
    event = await next_of_type(watcher, "release.changed")
    assert (event["release_id"], event["status"], event["gray_weight"]) == (release.pk, "gray", 5)
    await watcher.disconnect()


@pytest.mark.asyncio
async def test_users_only_receive_what_their_role_may_see(live_release, make_release, rm, qa, auditor):
    release = await sync_to_async(make_release)("v1.1.0", "staging")
    qa_socket, _, _ = await connect(qa)
    auditor_socket, _, _ = await connect(auditor)
    assert (await qa_socket.receive_json_from(timeout=5))["groups"] == ["fleet"]
    assert (await auditor_socket.receive_json_from(timeout=5))["groups"] == ["fleet"]
    # the audit log page asks for audit events; the policy lets auditors have them
    await auditor_socket.send_json_to({"subscribe": "audit"})
    assert (await auditor_socket.receive_json_from(timeout=5)) == {"type": "subscribed", "group": "audit"}
    await sync_to_async(release_promote)(actor=Actor.of(rm), release_id=release.pk)
    audit = await next_of_type(auditor_socket, "audit.created")
    assert audit["release_id"] == release.pk
    await next_of_type(qa_socket, "release.changed")
    # qa may not read the audit log: the audit.created event never reaches them
    assert "audit.created" not in [m["type"] for m in await collect(qa_socket, seconds=1.0)]
    await qa_socket.send_json_to({"subscribe": "audit"})
    assert (await qa_socket.receive_json_from(timeout=5))["type"] == "error"
    await qa_socket.send_json_to({"subscribe": f"release.{release.pk}"})
    assert (await qa_socket.receive_json_from(timeout=5)) == {"type": "subscribed", "group": f"release.{release.pk}"}
    await qa_socket.disconnect()
    await auditor_socket.disconnect()


@pytest.mark.asyncio
async def test_nothing_is_sent_for_a_transaction_that_rolled_back(live_release, make_release, rm, qa):
    from django.db import transaction

    release = await sync_to_async(make_release)("v1.1.0", "staging")
    watcher, _, _ = await connect(qa)
    await watcher.receive_json_from(timeout=5)

    def promote_then_fail():
        with transaction.atomic():
            release_promote(actor=Actor.of(rm), release_id=release.pk)
            raise RuntimeError("deploy target refused")

    with pytest.raises(RuntimeError):
        await sync_to_async(promote_then_fail)()
    assert [m for m in await collect(watcher, seconds=1.0) if m.get("release_id") == release.pk] == []
    await watcher.disconnect()
