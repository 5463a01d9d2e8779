"""A crash of the offline model's process, seen through the websocket: the reply being
written fails with a retryable message, other sockets keep streaming, the next reply answers."""

import os
import signal
import uuid

import pytest
from asgiref.sync import sync_to_async

from conversations import backends, services
from conversations.local import local_model_available
from conversations.local.engine import STOPPED
from conversations.models import Turn
from tests.streaming import frames_until_done, replay, send, socket, text_of

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not local_model_available(), reason="the offline model is not installed"),
]


async def start(ws, text: str) -> str:
    await send(ws, type="send", client_id=str(uuid.uuid4()), text=text, parent_id=None)
    created = await ws.receive_json_from(timeout=5)
    assert created["type"] == "turn.created", created
    return created["turn"]["id"]


async def first_text_frame(ws) -> list[dict]:
    frames = []
    while True:
        frames.append(await ws.receive_json_from(timeout=30))
        if any(op[0] == "text" for op in frames[-1].get("ops", [])):
            return frames


async def test_a_crash_fails_only_the_local_reply(alice, settings, fake_upstream):
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    fake_upstream.configure(delta_interval=0.05, deltas=40)
    make = sync_to_async(services.conversation_create)
    local, gemini = await make(owner=alice, model="local"), await make(
        owner=alice, model="gemini-3.5-flash")
    await sync_to_async(services.conversation_update_settings)(
        conversation=local, generation_settings={"max_output_tokens": 400})

    async with socket(alice, local) as ws_local, socket(alice, gemini) as ws_gemini:
        local_turn = await start(ws_local, "Write a very long story about a dragon.")
        gemini_turn = await start(ws_gemini, "keep going")
        before = await first_text_frame(ws_local)
        pid = backends.local_engine().worker_pid

        os.kill(pid, signal.SIGSEGV)
        frames = before + await frames_until_done(ws_local, timeout=30)
        gemini_frames = await frames_until_done(ws_gemini, timeout=30)

        assert frames[-1]["status"] == "failed"
        assert frames[-1]["error"] == {
            "code": "local_model_stopped", "message": STOPPED, "retryable": True}
        assert text_of(replay(frames, local_turn)[0])  # the partial reply stays
        assert gemini_frames[-1]["status"] == "completed"
        assert len(text_of(replay(gemini_frames, gemini_turn)[0]).split()) == 40
        stored = await Turn.objects.aget(pk=local_turn)
        assert stored.status == "failed" and stored.error["message"] == STOPPED

        # Retry: the next local reply answers, from a fresh worker process.
        await sync_to_async(services.conversation_update_settings)(
            conversation=local, generation_settings={"max_output_tokens": 16})
        await send(ws_local, type="regenerate", client_id=str(uuid.uuid4()), turn_id=local_turn)
        created = await ws_local.receive_json_from(timeout=5)
        retry = await frames_until_done(ws_local, timeout=60)
        assert retry[-1]["status"] in ("completed", "incomplete")
        assert text_of(replay(retry, created["turn"]["id"])[0]).strip()
        assert backends.local_engine().worker_pid not in (None, pid)


@pytest.fixture
def fresh_engine(settings):
    """backends.local_engine() built anew from the settings the test sets, then put back."""
    before, backends._engine = backends._engine, None
    yield
    if backends._engine is not None:
        backends._engine.close()
    backends._engine = before


async def test_a_full_queue_fails_the_turn_saying_why(alice, settings, fresh_engine):
    settings.GEMINI_API_KEY = ""
    settings.LOCAL_MODEL_QUEUE_LIMIT = 1
    make = sync_to_async(services.conversation_create)
    chats = [await make(owner=alice, model="local") for _ in range(3)]
    await sync_to_async(services.conversation_update_settings)(
        conversation=chats[0], generation_settings={"max_output_tokens": 400})

    async with socket(alice, chats[0]) as one, socket(alice, chats[1]) as two, \
            socket(alice, chats[2]) as three:
        long_turn = await start(one, "Write a very long story about a dragon.")
        await first_text_frame(one)  # generating
        await start(two, "hi")  # waits: the one place in the queue
        await start(three, "hi")
        refused = await frames_until_done(three)
        await send(one, type="stop", turn_id=long_turn)

    assert refused[-1]["status"] == "failed"
    assert refused[-1]["error"] == {
        "code": "local_model_busy", "retryable": True,
        "message": "The offline model is busy: 1 reply already waiting for it, the most "
                   "this server allows. Try again in a minute."}
