"""What one user or one socket may ask at once: each refusal says why and when to retry."""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from conversations import services
from conversations.limits import FrameRate
from conversations.models import Turn
from tests.streaming import frames_until_done, router, signed_in_session, socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gemini(settings, fake_upstream):
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    fake_upstream.configure(delta_interval=0.02, deltas=100)  # replies that take a while
    return fake_upstream


async def chat(owner):
    return await sync_to_async(services.conversation_create)(owner=owner,
                                                             model="gemini-3.5-flash")


def send_frame(parent_id=None, text="hi") -> dict:
    return {"type": "send", "client_id": str(uuid.uuid4()), "text": text, "parent_id": parent_id}


async def replies(ws, count: int) -> list[dict]:
    """The next `count` answers to frames (turn.created or error), skipping live updates."""
    answers = []
    while len(answers) < count:
        frame = await ws.receive_json_from(timeout=5)
        if frame["type"] in ("turn.created", "error"):
            answers.append(frame)
    return answers


async def test_a_branch_takes_one_running_reply_at_a_time(alice, gemini):
    conversation = await chat(alice)
    async with socket(alice, conversation) as ws:
        for _ in range(20):
            await ws.send_json_to(send_frame())
        answers = await replies(ws, 20)
    kinds = [a["type"] for a in answers]
    assert kinds.count("turn.created") == 1
    busy = [a for a in answers if a["type"] == "error"]
    assert len(busy) == 19 and {a["code"] for a in busy} == {"busy"}
    assert "still being written" in busy[0]["message"]
    assert await Turn.objects.acount() == 1


async def test_a_user_may_have_only_so_many_replies_running(alice, bob, gemini, settings):
    settings.MAX_RUNNING_TURNS_PER_USER = 2
    chats = [await chat(alice) for _ in range(3)]
    async with socket(alice, chats[0]) as one, socket(alice, chats[1]) as two, \
            socket(alice, chats[2]) as three, socket(bob, await chat(bob)) as bobs:
        for ws in (one, two, three, bobs):
            await ws.send_json_to(send_frame())
        refused = await three.receive_json_from(timeout=5)
        bob_created = await bobs.receive_json_from(timeout=5)
        done = await frames_until_done(one, timeout=30)
        await three.send_json_to(send_frame())  # once one has finished, there is room again
        created = await three.receive_json_from(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "too_many_running"
    assert "You already have 2 replies being written" in refused["message"]
    assert bob_created["type"] == "turn.created"  # another user is not held back
    assert done[-1]["status"] == "completed" and created["type"] == "turn.created"


async def test_a_flood_of_frames_is_dropped_with_one_error(alice, gemini, settings):
    settings.SOCKET_FRAMES_PER_SECOND, settings.SOCKET_FRAME_BURST = 5, 3
    conversation = await chat(alice)
    async with socket(alice, conversation) as ws:
        for _ in range(50):
            await ws.send_to(text_data='{"type": "dance"}')
        answers = await replies(ws, 4)
        assert await ws.receive_nothing(timeout=0.3)  # the rest were dropped unanswered
        await asyncio.sleep(answers[-1]["retry_after"])
        await ws.send_to(text_data='{"type": "dance"}')
        later = await ws.receive_json_from(timeout=5)
    assert [a["code"] for a in answers] == ["unknown_type"] * 3 + ["rate_limited"]
    assert answers[-1]["retry_after"] >= 1 and "5 a second" in answers[-1]["message"]
    assert later["code"] == "unknown_type"  # frames go through again


async def test_syncs_are_answered_with_one_snapshot_per_interval(alice, gemini, settings):
    settings.SOCKET_FRAME_BURST = 100
    conversation = await chat(alice)
    async with socket(alice, conversation) as ws:
        for _ in range(60):
            await ws.send_json_to({"type": "sync"})
        first = await ws.receive_json_from(timeout=5)
        assert await ws.receive_nothing(timeout=1.0)  # the other 59 wait for the interval
        second = await ws.receive_json_from(timeout=5)  # and get one snapshot between them
        assert await ws.receive_nothing(timeout=2.5)
    assert first["type"] == second["type"] == "snapshot"


async def test_too_many_open_sockets_are_refused(alice, settings):
    settings.MAX_SOCKETS_PER_USER = 2
    conversation = await sync_to_async(services.conversation_create)(owner=alice, model="local")

    async def connect():
        communicator = WebsocketCommunicator(router, f"/ws/conversations/{conversation.pk}/")
        communicator.scope["user"] = alice
        communicator.scope["session"] = await sync_to_async(signed_in_session)(alice)
        assert (await communicator.connect(timeout=5))[0]
        return communicator, await communicator.receive_output(timeout=5)

    (a, first), (b, second), (c, third) = [await connect() for _ in range(3)]
    assert first["type"] == second["type"] == "websocket.send"
    assert third == {"type": "websocket.close", "code": 4429}
    await a.disconnect()
    d, fourth = await connect()  # a closed tab frees its place
    assert fourth["type"] == "websocket.send"
    for communicator in (b, d):
        await communicator.disconnect()


def test_the_frame_rate_refills_over_time(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("conversations.limits.time.monotonic", lambda: now[0])
    rate = FrameRate(rate=2, burst=2)
    assert [rate.wait() for _ in range(3)] == [0, 0, 0.5]
    now[0] += 0.5
    assert rate.wait() == 0 and rate.wait() == 0.5
