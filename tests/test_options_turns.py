"""Conversation options through a real turn: websocket, runner, fake upstream's request log.

Tools, structured output (checked at the end of the turn), thought summaries streaming, and
thought signatures replayed exactly in a stateless branch.
"""

import json

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.models import Turn
from tests.streaming import apply_ops, frames_until_done, send, socket
from tests.test_consumers import ask, creates, new_id
from tests.test_payloads import RECIPE, sdk_body

pytestmark = pytest.mark.django_db(transaction=True)

SIGNATURE = "RmFrZVRob3VnaHRTaWduYXR1cmU="  # what the fake's echo thought is signed with


@pytest.fixture
def gemini(settings, fake_upstream):
    """Gemini models answered by the fake upstream."""
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    return fake_upstream


def json_reply(text: str) -> dict:
    return {"id": "v1_json", "status": "completed",
            "steps": [{"type": "model_output", "content": [{"type": "text", "text": text}]}]}


async def chat_with(alice, **options):
    chat = await sync_to_async(services.conversation_create)(owner=alice,
                                                             model="gemini-3.5-flash")
    await sync_to_async(services.conversation_update_settings)(conversation=chat, **options)
    return chat


async def test_the_options_reach_the_request_as_the_sdk_types_say(alice, gemini):
    chat = await chat_with(alice, tools=["google_search", "code_execution"],
                           response_schema=RECIPE,
                           generation_settings={"thinking_summaries": "none", "seed": 3,
                                                "stop_sequences": ["END"], "top_p": 0.5})
    gemini.script(json_reply('{"recipe_name": "Bread", "ingredients": ["flour"]}'))
    async with socket(alice, chat) as ws:
        await ask(ws, "A recipe, please")
    [body] = creates(gemini)
    assert body["tools"] == [{"type": "google_search"}, {"type": "code_execution"}]
    assert body["response_format"]["schema"] == RECIPE
    assert body["generation_config"] == {"seed": 3, "stop_sequences": ["END"], "top_p": 0.5,
                                         "thinking_summaries": "none"}
    sdk_body(body)


async def test_a_tool_the_admin_turned_off_is_stripped_from_requests(alice, gemini, settings):
    chat = await chat_with(alice, tools=["google_search", "google_maps"])
    settings.DISABLED_TOOLS = ["google_maps"]
    async with socket(alice, chat) as ws:
        await ask(ws, "Where is the nearest bakery?")
    assert creates(gemini)[-1]["tools"] == [{"type": "google_search"}]


async def test_a_structured_reply_is_checked_when_the_turn_ends(alice, gemini):
    chat = await chat_with(alice, response_schema=RECIPE)
    gemini.script(json_reply('{"recipe_name": "Bread", "ingredients": ["flour", "water"]}'),
                  json_reply('{"recipe_name": "Bread", "ingredients": "flour"}'),
                  json_reply('{"recipe_name": "Bread",'))
    async with socket(alice, chat) as ws:
        good, frames = await ask(ws, "one")
        assert frames[-1]["output_check"] == {"valid": True, "error": None}
        assert all("output_check" not in f for f in frames[:-1])  # known only at the end
        wrong, frames = await ask(ws, "two", parent_id=good)
        assert frames[-1]["output_check"]["error"] == (
            "The reply does not match the schema: 'flour' is not of type 'array' "
            "(at /ingredients).")
        cut, frames = await ask(ws, "three", parent_id=wrong)
        assert frames[-1]["output_check"]["error"].startswith("The reply is not valid JSON")
    assert (await Turn.objects.aget(pk=wrong)).output_check["valid"] is False
    async with socket(alice, chat) as ws:  # a reload shows the same marks
        checks = [t["output_check"]["valid"] for t in ws.snapshot["turns"]]
        assert ws.snapshot["conversation"]["structured"] is True
    assert checks == [True, False, False]


async def test_a_reply_without_a_schema_is_not_checked(alice, gemini):
    chat = await chat_with(alice, response_schema=RECIPE)
    await sync_to_async(services.conversation_update_settings)(conversation=chat,
                                                               response_schema=None)
    async with socket(alice, chat) as ws:
        turn_id, frames = await ask(ws, "free text")
    assert "response_format" not in creates(gemini)[-1]
    assert (await Turn.objects.aget(pk=turn_id)).output_check is None


async def test_thought_summaries_stream_into_the_thought_before_its_signature(alice, gemini):
    gemini.configure(delta_interval=0.08)  # slower than a frame's coalescing window
    chat = await chat_with(alice, generation_settings={"thinking_summaries": "auto"})
    async with socket(alice, chat) as ws:
        _, frames = await ask(ws, "Think out loud")
    seen = []
    steps: list = []
    for frame in frames:  # the thought as each frame left it
        apply_ops(steps, frame.get("ops", []))
        if steps and steps[0].get("type") == "thought":
            seen.append((len(steps[0].get("summary") or []), bool(steps[0].get("signature"))))
    assert (1, False) in seen or (2, False) in seen  # the summary came first, live
    assert seen[-1] == (2, True)
    assert creates(gemini)[-1]["generation_config"] == {"thinking_summaries": "auto"}


async def test_signatures_are_replayed_exactly_in_a_stateless_branch(alice, gemini):
    chat = await chat_with(alice, stateful=False, generation_settings={"thinking_level": "low"})
    async with socket(alice, chat) as ws:
        first, _ = await ask(ws, "Hi")
        second, _ = await ask(ws, "And now?", parent_id=first)
        await send(ws, type="regenerate", turn_id=second, client_id=new_id())  # a branch
        await ws.receive_json_from(timeout=5)
        await frames_until_done(ws)
    stored = (await Turn.objects.aget(pk=first)).steps
    assert stored[0] == {"type": "thought", "signature": SIGNATURE}
    for body in creates(gemini)[1:]:  # the second message and its regeneration
        assert body["store"] is False and "previous_interaction_id" not in body
        assert body["input"][1] == stored[0]  # the thought, signature and all, as received
        assert body["input"][2]["type"] == "model_output"
    assert json.dumps(creates(gemini)[1]["input"]) == json.dumps(creates(gemini)[2]["input"])
