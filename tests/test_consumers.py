"""The conversation websocket against the fake upstream: streaming, stop, reconnect, branches."""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from google.genai._gaos.types import interactions as sdk
from pydantic import TypeAdapter

from conversations import services
from conversations.models import Turn
from tests.streaming import frames_until_done, replay, router, send, socket, text_of

pytestmark = pytest.mark.django_db(transaction=True)

sdk_create = TypeAdapter(sdk.CreateModelInteraction)


@pytest.fixture
def gemini(settings, fake_upstream):
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    return fake_upstream


@pytest.fixture
def chat(alice):
    return services.conversation_create(owner=alice, model="gemini-3.5-flash")


def new_id() -> str:
    return str(uuid.uuid4())


async def ask(communicator, text: str, parent_id: str | None = None) -> tuple[str, list[dict]]:
    """Send a message; return the new turn's id and its frames up to the end."""
    await send(communicator, type="send", client_id=new_id(), text=text, parent_id=parent_id)
    created = await communicator.receive_json_from(timeout=5)
    assert created["type"] == "turn.created", created
    turn_id = created["turn"]["id"]
    return turn_id, await frames_until_done(communicator)


async def get_turn(turn_id: str) -> Turn:
    return await Turn.objects.aget(pk=turn_id)


def creates(upstream) -> list[dict]:
    return [r.json for r in upstream.find_requests("POST", r"/interactions$")]


async def test_it_streams_a_reply_and_stores_what_it_showed(alice, chat, gemini):
    async with socket(alice, chat) as ws:
        turn_id, frames = await ask(ws, "hello there")
    steps, seq = replay(frames, turn_id)
    assert text_of(steps) == "Echo: hello there"
    assert frames[-1]["status"] == "completed"
    turn = await get_turn(turn_id)
    assert turn.status == "completed"
    assert turn.steps == steps
    assert turn.seq == seq
    assert turn.interaction_id and turn.usage


async def refused_with(user, conversation_id) -> int:
    """The close code a socket gets, checking that nothing else was sent on it."""
    communicator = WebsocketCommunicator(router, f"/ws/conversations/{conversation_id}/")
    communicator.scope["user"] = user
    await communicator.connect(timeout=5)
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
    return output["code"]


async def test_it_refuses_another_users_socket(bob, chat):
    assert await refused_with(bob, chat.pk) == 4404


async def test_it_refuses_a_socket_for_a_conversation_that_does_not_exist(alice):
    assert await refused_with(alice, uuid.uuid4()) == 4404


async def test_it_refuses_an_anonymous_socket(chat):
    from django.contrib.auth.models import AnonymousUser

    assert await refused_with(AnonymousUser(), chat.pk) == 4401


@pytest.mark.parametrize("raw, code", [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "send", "text": "hi"}', "bad_frame"),
    ('{"type": "stop", "turn_id": "nope"}', "not_found"),
])
async def test_it_answers_bad_frames_with_an_error_and_stays_usable(alice, chat, gemini, raw,
                                                                   code):
    async with socket(alice, chat) as ws:
        await ws.send_to(text_data=raw)
        error = await ws.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["code"] == code and error["message"]
        turn_id, frames = await ask(ws, "still there?")
    assert text_of(replay(frames, turn_id)[0]) == "Echo: still there?"


@pytest.mark.parametrize("titled", [False, True])
@pytest.mark.parametrize("field", ["text", "client_id"])
async def test_a_lone_surrogate_is_refused_and_bricks_nothing(alice, chat, gemini, titled,
                                                              field):
    if titled:
        await sync_to_async(services.conversation_rename)(conversation=chat, title="Named")
    frame = {"type": "send", "client_id": new_id(), "text": "hi", "parent_id": None}
    frame[field] = "bad \ud800 text"
    async with socket(alice, chat) as ws:
        await ws.send_to(text_data=json.dumps(frame))  # json.dumps escapes it: valid UTF-8
        error = await ws.receive_json_from(timeout=5)
        assert error["code"] == "bad_frame" and "lone surrogate" in error["message"]
        turn_id, frames = await ask(ws, "still there?")
    assert text_of(replay(frames, turn_id)[0]) == "Echo: still there?"
    async with socket(alice, chat) as ws:  # and the conversation opens again
        assert [t["id"] for t in ws.snapshot["turns"]] == [turn_id]


async def test_it_refuses_an_oversized_message(alice, chat, gemini):
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id=new_id(), text="x" * 100_001, parent_id=None)
        error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "too_long"
    assert await Turn.objects.acount() == 0


async def test_a_resend_with_the_same_client_id_creates_one_turn(alice, chat, gemini):
    client_id = new_id()
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id=client_id, text="once", parent_id=None)
        first = await ws.receive_json_from(timeout=5)
        await frames_until_done(ws)
        await send(ws, type="send", client_id=client_id, text="once", parent_id=None)
        again = await ws.receive_json_from(timeout=5)
    assert again["type"] == "turn.created" and again["turn"]["id"] == first["turn"]["id"]
    assert await Turn.objects.acount() == 1
    assert len(creates(gemini)) == 1


async def test_it_refuses_a_parent_from_another_conversation(alice, bob, chat, gemini):
    other = await sync_to_async(services.conversation_create)(owner=bob, model="gemini-3.5-flash")
    theirs, _ = await sync_to_async(services.turn_create)(
        conversation=other, client_id="x", input=[{"type": "text", "text": "secret"}], parent=None)
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id=new_id(), text="hi", parent_id=str(theirs.pk))
        error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "not_found"


async def test_stateful_turns_chain_on_the_parent_interaction(alice, chat, gemini):
    async with socket(alice, chat) as ws:
        first, _ = await ask(ws, "I have 2 dogs.")
        await ask(ws, "How many paws?", parent_id=first)
    first_turn = await get_turn(first)
    one, two = creates(gemini)
    assert "previous_interaction_id" not in one and "store" not in one
    assert two["previous_interaction_id"] == first_turn.interaction_id
    second = await Turn.objects.exclude(pk=first).aget()
    assert second.previous_interaction_id == first_turn.interaction_id
    assert two["input"] == [{"type": "user_input",
                             "content": [{"type": "text", "text": "How many paws?"}]}]


async def test_stateless_turns_replay_the_branch_exactly(alice, chat, gemini):
    await sync_to_async(services.conversation_update_settings)(conversation=chat, stateful=False)
    gemini.script("thought_summary")
    async with socket(alice, chat) as ws:
        first, _ = await ask(ws, "I have 2 dogs.")
        await ask(ws, "How many paws?", parent_id=first)
    first_turn = await get_turn(first)
    assert any(step["type"] == "thought" and step.get("signature") for step in first_turn.steps)
    _, two = creates(gemini)
    assert two["store"] is False and "previous_interaction_id" not in two
    assert two["input"] == [
        {"type": "user_input", "content": [{"type": "text", "text": "I have 2 dogs."}]},
        *first_turn.steps,
        {"type": "user_input", "content": [{"type": "text", "text": "How many paws?"}]},
    ]


async def test_an_expired_previous_interaction_falls_back_to_replay(alice, chat, gemini):
    async with socket(alice, chat) as ws:
        first, _ = await ask(ws, "Remember 42.")
        first_turn = await get_turn(first)
        gemini._store.pop(first_turn.interaction_id)  # the upstream forgot it
        second, frames = await ask(ws, "What number?", parent_id=first)
    assert frames[-1]["status"] == "completed"
    attempts = creates(gemini)[1:]
    assert attempts[0]["previous_interaction_id"] == first_turn.interaction_id
    assert "previous_interaction_id" not in attempts[1]
    assert attempts[1]["input"][0]["content"][0]["text"] == "Remember 42."
    assert (await get_turn(second)).previous_interaction_id == ""  # it was replayed


@pytest.mark.parametrize("stateful", [True, False])
async def test_a_pending_function_call_does_not_block_the_next_message(alice, chat, gemini,
                                                                        stateful):
    await sync_to_async(services.conversation_update_settings)(conversation=chat,
                                                               stateful=stateful)
    gemini.script("function_call_parallel")
    async with socket(alice, chat) as ws:
        first, frames = await ask(ws, "weather in Paris and London?")
        assert frames[-1]["status"] == "requires_action"
        second, frames = await ask(ws, "never mind, say hi", parent_id=first)
        third, frames3 = await ask(ws, "and again", parent_id=second)
    assert frames[-1]["status"] == "completed", frames[-1].get("error")
    assert frames3[-1]["status"] == "completed", frames3[-1].get("error")
    calls = [s for s in (await get_turn(first)).steps if s["type"] == "function_call"]
    sent = creates(gemini)[1]["input"]
    results = [s for s in sent if s["type"] == "function_result"]
    assert [r["call_id"] for r in results] == [c["id"] for c in calls] and len(calls) == 2
    assert all(r["is_error"] and "does not run functions" in r["result"] for r in results)
    assert sent[-1]["type"] == "user_input"  # the results come before the new message
    sdk_create.validate_python(creates(gemini)[1])  # as the official SDK types it
    if not stateful:  # the replay of the third turn carries them again, in place
        replayed = creates(gemini)[2]["input"]
        kinds = [s["type"] for s in replayed]
        assert kinds.index("function_result") > kinds.index("function_call")
        assert kinds.count("function_result") == 2


async def test_regenerate_makes_a_sibling_with_the_same_parent(alice, chat, gemini):
    async with socket(alice, chat) as ws:
        first, _ = await ask(ws, "Hi")
        second, _ = await ask(ws, "Tell me a joke", parent_id=first)
        await send(ws, type="regenerate", turn_id=second, client_id=new_id())
        created = await ws.receive_json_from(timeout=5)
        await frames_until_done(ws)
    sibling = created["turn"]
    assert sibling["parent_id"] == first and sibling["id"] != second
    assert sibling["input"] == [{"type": "text", "text": "Tell me a joke"}]
    *_, a, b = creates(gemini)
    assert a["previous_interaction_id"] == b["previous_interaction_id"]


async def test_stop_keeps_the_partial_reply_and_cancels(alice, chat, gemini):
    gemini.configure(delta_interval=0.05, deltas=200)
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id=new_id(), text="talk a lot", parent_id=None)
        turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
        frames = []
        while not text_of(replay(frames, turn_id)[0]):
            frames.append(await ws.receive_json_from(timeout=5))
        await send(ws, type="stop", turn_id=turn_id)
        frames += await frames_until_done(ws)
    steps, _ = replay(frames, turn_id)
    assert frames[-1]["status"] == "cancelled"
    turn = await get_turn(turn_id)
    assert turn.status == "cancelled"
    assert turn.steps == steps and 0 < len(text_of(steps)) < 150


async def test_a_socket_that_joins_mid_stream_gets_everything_once(alice, chat, gemini):
    gemini.configure(delta_interval=0.02, deltas=60)
    async with socket(alice, chat) as first:
        await send(first, type="send", client_id=new_id(), text="stream please", parent_id=None)
        turn_id = (await first.receive_json_from(timeout=5))["turn"]["id"]
        await asyncio.sleep(0.4)
        async with socket(alice, chat) as second:
            live = next(t for t in second.snapshot["turns"] if t["id"] == turn_id)
            assert live["status"] == "in_progress" and text_of(live["steps"])
            later = await frames_until_done(second)
        earlier = await frames_until_done(first)
    whole, _ = replay(earlier, turn_id)
    joined, _ = replay(later, turn_id, steps=live["steps"], seq=live["seq"])
    assert text_of(joined) == text_of(whole) and len(text_of(whole).split()) == 60


async def test_a_rate_limited_upstream_fails_the_turn_with_a_clear_error(alice, chat, gemini):
    gemini.fault(429, times=None, method="POST", message="Resource has been exhausted")
    async with socket(alice, chat) as ws:
        turn_id, frames = await ask(ws, "hi")
        assert frames[-1]["status"] == "failed"
        assert frames[-1]["error"]["message"]
        gemini.reset()
        again, frames = await ask(ws, "hi again")
    assert frames[-1]["status"] == "completed"
    assert (await get_turn(turn_id)).error["retryable"] is True


async def test_a_dropped_stream_is_resumed_without_loss(alice, chat, gemini):
    gemini.configure(deltas=20)
    gemini.fault("drop", after=8)
    async with socket(alice, chat) as ws:
        turn_id, frames = await ask(ws, "one two three")
    assert frames[-1]["status"] == "completed"
    assert text_of(replay(frames, turn_id)[0]).startswith("Echo: one two three")
    assert gemini.find_requests("GET", r"/interactions/")


async def test_the_local_model_answers_offline(alice, conversation, settings):
    settings.GEMINI_API_KEY = ""
    await sync_to_async(services.conversation_update_settings)(
        conversation=conversation, generation_settings={"max_output_tokens": 16})
    async with socket(alice, conversation) as ws:
        turn_id, frames = await ask(ws, "Say hello.")
    assert frames[-1]["status"] in ("completed", "incomplete")
    assert text_of(replay(frames, turn_id)[0]).strip()


async def test_a_gemini_model_without_a_key_fails_clearly(alice, chat, settings):
    settings.GEMINI_API_KEY = ""
    async with socket(alice, chat) as ws:
        _, frames = await ask(ws, "hi")
    assert frames[-1]["status"] == "failed"
    assert "API key" in frames[-1]["error"]["message"]


async def test_closing_the_socket_does_not_stop_the_reply(alice, chat, gemini):
    gemini.configure(delta_interval=0.01, deltas=40)
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id=new_id(), text="keep going", parent_id=None)
        turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
    for _ in range(100):
        turn = await get_turn(turn_id)
        if turn.status == "completed":
            break
        await asyncio.sleep(0.05)
    assert turn.status == "completed"
    assert len(text_of(turn.steps).split()) == 40


async def test_local_turns_wait_their_turn_and_say_so(alice, settings):
    settings.GEMINI_API_KEY = ""
    make = sync_to_async(services.conversation_create)
    first, second = await make(owner=alice, model="local"), await make(
        owner=alice, model="local")
    for chat in (first, second):
        await sync_to_async(services.conversation_update_settings)(
            conversation=chat, generation_settings={"max_output_tokens": 24})
    async with socket(alice, first) as one, socket(alice, second) as two:
        await send(one, type="send", client_id=new_id(), text="Count to ten.", parent_id=None)
        await send(two, type="send", client_id=new_id(), text="Name a colour.", parent_id=None)
        frames_one = await frames_until_done(one, timeout=60)
        frames_two = await frames_until_done(two, timeout=60)
    firsts = []
    for frames in (frames_one, frames_two):
        updates = [f for f in frames if f["type"] == "turn.update"]
        assert updates[-1]["status"] in ("completed", "incomplete")
        # A turn is created "queued"; a frame names the status only when it changes.
        firsts.append(updates[0].get("status", "queued"))
    # One model, one generation at a time: whichever came second waited, and said so.
    assert sorted(firsts) == ["in_progress", "queued"]


async def test_a_conversation_deleted_elsewhere_closes_its_open_sockets(alice, chat, gemini):
    async with socket(alice, chat) as ws:
        await sync_to_async(services.conversation_delete)(conversation=chat)
        await send(ws, type="send", client_id=new_id(), text="anyone there?", parent_id=None)
        output = await ws.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == 4404
    assert await Turn.objects.acount() == 0


async def test_the_conversation_settings_reach_the_request(alice, chat, gemini):
    await sync_to_async(services.conversation_update_settings)(
        conversation=chat, system_instruction="You are a cat. Your name is Neko.",
        generation_settings={"temperature": 0.1, "thinking_level": "low",
                             "thinking_summaries": "auto", "max_output_tokens": 256})
    async with socket(alice, chat) as ws:
        _, frames = await ask(ws, "Hello there")
    assert frames[-1]["status"] == "completed"
    [body] = creates(gemini)
    assert body["model"] == "gemini-3.5-flash"
    assert body["system_instruction"] == "You are a cat. Your name is Neko."
    assert body["generation_config"] == {"temperature": 0.1, "thinking_level": "low",
                                         "thinking_summaries": "auto", "max_output_tokens": 256}


async def test_the_branch_on_screen_is_what_a_socket_gets_and_switching_is_remembered(
        alice, chat, gemini):
    async with socket(alice, chat) as ws:
        first, _ = await ask(ws, "Hi")
        second, _ = await ask(ws, "Tell me a joke", parent_id=first)
        await send(ws, type="regenerate", turn_id=second, client_id=new_id())
        third = (await ws.receive_json_from(timeout=5))["turn"]["id"]
        await frames_until_done(ws)
        below, _ = await ask(ws, "Another", parent_id=third)

    async with socket(alice, chat) as ws:  # a reload: the newest version, with its siblings
        turns = ws.snapshot["turns"]
        assert [t["id"] for t in turns] == [first, third, below]
        assert turns[1]["siblings"] == [second, third]
        await send(ws, type="select", turn_id=second)  # "‹": the older version
        branch = await ws.receive_json_from(timeout=5)
    assert branch["type"] == "branch" and branch["turn_id"] == second and branch["complete"]
    assert [t["id"] for t in branch["turns"]] == [second]
    assert branch["turns"][0]["steps"]  # whole turns, ready to show

    async with socket(alice, chat) as ws:  # another tab, or a reload, opens that version
        assert [t["id"] for t in ws.snapshot["turns"]] == [first, second]
        await send(ws, type="select", turn_id=third)
        branch = await ws.receive_json_from(timeout=5)
    assert [t["id"] for t in branch["turns"]] == [third, below]


async def test_earlier_turns_come_a_page_at_a_time(alice, chat, gemini, settings):
    settings.TURNS_PAGE = 2
    parent = None
    async with socket(alice, chat) as ws:
        sent = []
        for text in "abcde":
            parent, _ = await ask(ws, text, parent_id=parent)
            sent.append(parent)
    async with socket(alice, chat) as ws:
        assert [t["id"] for t in ws.snapshot["turns"]] == sent[3:]
        await send(ws, type="history", turn_id=sent[3])
        page = await ws.receive_json_from(timeout=5)
        assert page["type"] == "history" and page["turn_id"] == sent[3]
        assert [t["id"] for t in page["turns"]] == sent[1:3]
        await send(ws, type="history", turn_id=sent[0])
        assert (await ws.receive_json_from(timeout=5))["turns"] == []


@pytest.mark.parametrize("kind", ["select", "history"])
async def test_a_turn_of_another_conversation_is_not_found(alice, bob, chat, gemini, kind):
    other = await sync_to_async(services.conversation_create)(owner=bob, model="gemini-3.5-flash")
    async with socket(bob, other) as ws:
        theirs, _ = await ask(ws, "secret")
    async with socket(alice, chat) as ws:
        await send(ws, type=kind, turn_id=theirs)
        error = await ws.receive_json_from(timeout=5)
        await send(ws, type=kind)
        missing = await ws.receive_json_from(timeout=5)
    assert error["code"] == "not_found" and error["turn_id"] == theirs
    assert missing["code"] == "bad_frame"
