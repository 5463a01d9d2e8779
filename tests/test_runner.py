"""The runner against a channel layer with latency, as Redis has (the in-memory layer has none)."""

import asyncio
import time
import uuid

import pytest
from channels.layers import get_channel_layer

from conversations import services
from conversations.models import Turn
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


FAILS_IN_BAND = [  # as the offline model ends a reply its worker died in
    {"event_type": "interaction.created",
     "interaction": {"id": "int-x", "status": "in_progress", "object": "interaction"}},
    {"event_type": "step.start", "index": 0, "step": {"type": "model_output", "content": []}},
    {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": "Half"}},
    {"event_type": "step.stop", "index": 0},
    {"event_type": "error", "error": {"code": "stopped", "message": "It stopped."}},
    {"event_type": "interaction.completed",
     "interaction": {"id": "int-x", "status": "failed", "object": "interaction"}},
]


async def one_turn(owner) -> tuple[list[dict], Turn]:
    """Send one message in a new conversation: the turn's frames to its end, and its row."""
    chat = await asyncio.to_thread(services.conversation_create, owner=owner,
                                   model="gemini-3.5-flash")
    async with socket(owner, chat) as ws:
        await send(ws, type="send", client_id=str(uuid.uuid4()), text="go", parent_id=None)
        turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
        frames = await frames_until_done(ws)
    return frames, await Turn.objects.aget(pk=turn_id)


@pytest.mark.parametrize("script", [FAILS_IN_BAND, "error_event", "seed_stream",
                                    "function_call"])
async def test_the_outcome_comes_once_in_the_last_frame_after_the_database(alice, gemini,
                                                                           script):
    """No frame says the turn ended before the database does, and the last one says all of it
    (status and error together): a client may chain onto a turn the moment it is told."""
    gemini.configure(delta_interval=0.05)  # each event after a quiet spell: sent at once
    gemini.script(script)
    frames, stored = await one_turn(alice)
    statuses = [f["status"] for f in frames if "status" in f]
    assert all(s in ("queued", "in_progress") for s in statuses[:-1])
    assert statuses[-1] == stored.status and frames[-1]["status"] == stored.status
    if stored.status == "failed":
        assert frames[-1]["error"] == stored.error and stored.error["message"]


class SlowToClose:
    """A backend whose stream pauses between its last event and its end, as a connection
    can: the runner has seen the outcome but not yet finished."""

    def __init__(self, events):
        self.events = events

    async def stream(self, body):
        from conversations.interactions.events import parse_event

        for raw in self.events:
            yield parse_event(raw)
        await asyncio.sleep(0.2)

    async def cancel(self, interaction_id):
        return False


async def test_the_outcome_waits_for_the_end_of_the_stream(alice, gemini, monkeypatch):
    from conversations import runner

    monkeypatch.setattr(runner, "backend_for", lambda model, user: SlowToClose(FAILS_IN_BAND))
    frames, stored = await one_turn(alice)

    assert stored.status == "failed" and frames[-1]["status"] == "failed"
    assert frames[-1]["error"] == stored.error == {"code": "stopped", "message": "It stopped."}


async def test_the_run_sends_the_conversation_and_branch_as_the_database_has_them(alice, gemini):
    """The run loads its own conversation and ancestors: a caller's stale copy is not sent."""
    from conversations import runner
    from conversations.models import Conversation

    _, first = await one_turn(alice)
    stale = await Conversation.objects.aget(pk=first.conversation_id)
    await asyncio.to_thread(services.conversation_update_settings,
                            conversation=await Conversation.objects.aget(pk=stale.pk),
                            system_instruction="Answer in French.")
    turn, _ = await asyncio.to_thread(services.turn_create, conversation=stale,
                                      client_id="second", parent=first,
                                      input=[{"type": "text", "text": "again"}])
    await runner.start(turn).task

    body = gemini.find_requests("POST", r"/interactions$")[-1].json
    assert body["system_instruction"] == "Answer in French."
    assert body["previous_interaction_id"] == first.interaction_id  # from the parent it loaded
    assert (await Turn.objects.aget(pk=turn.pk)).status == "completed"


async def test_the_first_message_names_the_conversation_and_every_socket_hears_it(alice, gemini):
    chat = await asyncio.to_thread(services.conversation_create, owner=alice,
                                   model="gemini-3.5-flash")
    async with socket(alice, chat) as ws, socket(alice, chat) as other:
        for text in ("What is a turn?", "And a branch?"):
            await send(ws, type="send", client_id=str(uuid.uuid4()), text=text, parent_id=None)
            await ws.receive_json_from(timeout=5)  # turn.created
            frames = await frames_until_done(ws)
            seen = [await other.receive_json_from(timeout=5)]
            seen += await frames_until_done(other)
            named = [f for f in frames + seen if f["type"] == "conversation.updated"]
            if text == "What is a turn?":
                assert [f["conversation"]["title"] for f in named] == ["What is a turn?"] * 2
            else:
                assert named == []
    assert (await type(chat).objects.aget(pk=chat.pk)).title == "What is a turn?"


async def test_while_the_outcome_is_written_the_live_state_is_not_told_it(alice, gemini,
                                                                          monkeypatch):
    """Until the database has the outcome, the live state (what a new socket, or another
    process asking through the hub, gets) shows the turn still running; the last frame ends
    it. Here a new socket's own queries wait behind the write (one database thread); another
    process's do not."""
    from conversations import runner

    finish = services.turn_finish
    writing = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_finish(**fields):
        loop.call_soon_threadsafe(writing.set)
        time.sleep(0.3)
        finish(**fields)

    monkeypatch.setattr(runner.services, "turn_finish", slow_finish)
    chat = await asyncio.to_thread(services.conversation_create, owner=alice,
                                   model="gemini-3.5-flash")
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id=str(uuid.uuid4()), text="go", parent_id=None)
        turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
        await asyncio.wait_for(writing.wait(), 10)
        (live,) = runner.live_turns(chat.pk)
        frames = await frames_until_done(ws)

    assert live["status"] == "in_progress" and live["error"] is None
    steps, _ = replay(frames, turn_id)
    assert live["steps"] == steps and frames[-1]["seq"] == live["seq"] + 1
    assert frames[-1]["status"] == "completed"
    assert (await Turn.objects.aget(pk=turn_id)).status == "completed"


async def test_a_turn_whose_conversation_is_deleted_before_it_starts_ends_quietly(
        alice, gemini, caplog):
    from conversations import runner

    chat = await asyncio.to_thread(services.conversation_create, owner=alice,
                                   model="gemini-3.5-flash")
    turn, _ = await asyncio.to_thread(services.turn_create, conversation=chat, client_id="c",
                                      parent=None, input=[{"type": "text", "text": "hi"}])
    await chat.adelete()
    await runner.start(turn).task

    assert not gemini.find_requests("POST", r"/interactions$")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert str(turn.pk) not in runner.RUNS
