"""The runner against a channel layer with latency, as Redis has (the in-memory layer has none)."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer

from conversations import services
from tests.streaming import frames_until_done, replay, send, socket, text_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_layer(monkeypatch):
    """Every group_send takes 30 ms, like a round trip to a busy Redis."""
    layer = get_channel_layer()
    group_send = layer.group_send

    async def slow_group_send(group, message):
        await asyncio.sleep(0.03)
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", slow_group_send)
    return layer


@pytest.fixture
def gemini(settings, fake_upstream):
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    return fake_upstream


@pytest.mark.parametrize("attempt", range(5))
async def test_a_stop_while_a_frame_is_being_sent_loses_no_frame(alice, gemini, slow_layer,
                                                                 attempt):
    gemini.configure(delta_interval=0.04, deltas=400)  # each delta goes out on its own
    chat = await asyncio.to_thread(services.conversation_create, owner=alice,
                                   model="gemini-3.5-flash")
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id=str(uuid.uuid4()), text="go", parent_id=None)
        turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
        frames = [await ws.receive_json_from(timeout=5) for _ in range(3 + attempt)]
        await send(ws, type="stop", turn_id=turn_id)
        frames += await frames_until_done(ws)

    assert frames[-1]["status"] == "cancelled"
    steps, _ = replay(frames, turn_id)  # fails on a gap in the sequence numbers
    assert text_of(steps)
