import pytest

from conversations import payloads, services
from conversations.models import Turn

pytestmark = pytest.mark.django_db


def exchange(conversation, text, parent=None):
    turn, _ = services.turn_create(conversation=conversation, client_id=text, parent=parent,
                                   input=[{"type": "text", "text": text}])
    services.turn_finish(turn_id=turn.pk, status=Turn.Status.COMPLETED, seq=1,
                         interaction_id=f"int-{text}",
                         steps=[{"type": "model_output", "content": [{"type": "text",
                                                                       "text": "ok"}]}])
    turn.refresh_from_db()
    return turn


def body_for(conversation, parent):
    turn, _ = services.turn_create(conversation=conversation, client_id="next", parent=parent,
                                   input=[{"type": "text", "text": "next"}])
    return payloads.request_body(conversation, turn, parent, [parent])


def test_a_stateful_gemini_turn_chains_on_its_parent(alice):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    body = body_for(chat, exchange(chat, "first"))
    assert body["previous_interaction_id"] == "int-first"
    assert body["input"] == [{"type": "user_input", "content": [{"type": "text", "text": "next"}]}]
    assert "store" not in body


def test_the_offline_model_is_always_sent_the_whole_branch(alice):
    chat = services.conversation_create(owner=alice, model="local")
    assert chat.stateful  # the stored choice stays; it means nothing to this model
    body = body_for(chat, exchange(chat, "first"))
    assert "previous_interaction_id" not in body
    assert [step["type"] for step in body["input"]] == ["user_input", "model_output",
                                                        "user_input"]
    assert body["store"] is False  # nothing for the engine to remember


def branch_of(chat, length):
    parent = None
    for i in range(length):
        parent = exchange(chat, f"m{i}", parent)
    turn, _ = services.turn_create(conversation=chat, client_id="new", parent=parent,
                                   input=[{"type": "text", "text": "new"}])
    return turn, parent


def test_a_chained_turn_loads_its_parent_and_not_the_branch(alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations.runner import _load

    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    turn, parent = branch_of(chat, 5)
    with CaptureQueriesContext(connection) as queries:
        loaded, got_parent, ancestors = _load(turn)
    assert len(queries) == 2  # the conversation, the parent
    assert (loaded, got_parent, ancestors) == (chat, parent, None)
    body = payloads.request_body(loaded, turn, got_parent, ancestors)
    assert body["previous_interaction_id"] == "int-m4"


@pytest.mark.parametrize("change", ["stateless", "unchainable", "offline"])
def test_a_turn_that_replays_loads_the_whole_branch(alice, change):
    from conversations.runner import _load

    model = "local" if change == "offline" else "gemini-3.5-flash"
    chat = services.conversation_create(owner=alice, model=model)
    chat.stateful = change != "stateless"
    chat.save()
    turn, parent = branch_of(chat, 3)
    if change == "unchainable":
        Turn.objects.filter(pk=parent.pk).update(status=Turn.Status.FAILED)
    _, got_parent, ancestors = _load(turn)
    assert [t.client_id for t in ancestors] == ["m0", "m1", "m2"]
    body = payloads.request_body(chat, turn, got_parent, ancestors)
    assert "previous_interaction_id" not in body
    assert [s["type"] for s in body["input"]] == ["user_input", "model_output"] * 3 + [
        "user_input"]


def test_replaying_without_the_branch_is_refused(alice):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    turn, parent = branch_of(chat, 2)
    assert "previous_interaction_id" in payloads.request_body(chat, turn, parent)
    with pytest.raises(ValueError, match="needs its turns"):
        payloads.request_body(chat, turn, parent, replay=True)
    replayed = payloads.request_body(chat, turn, parent, [parent], replay=True)
    assert [s["type"] for s in replayed["input"]] == ["user_input", "model_output",
                                                      "user_input"]


def test_a_first_turn_needs_no_branch(alice):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    turn, _ = services.turn_create(conversation=chat, client_id="one", parent=None,
                                   input=[{"type": "text", "text": "hi"}])
    assert payloads.request_body(chat, turn, None)["input"] == [
        {"type": "user_input", "content": [{"type": "text", "text": "hi"}]}]


# --- options: tools, structured output, thinking, sampling, images -----------------------------

RECIPE = {"type": "object", "properties": {"recipe_name": {"type": "string"},
                                           "ingredients": {"type": "array",
                                                           "items": {"type": "string"}}},
          "required": ["recipe_name", "ingredients"]}


def configured(owner, model="gemini-3.5-flash", *, tools=(), schema=None, **generation):
    chat = services.conversation_create(owner=owner, model=model)
    chat.tools = list(tools)
    chat.response_schema = schema
    chat.generation_settings = {**chat.generation_settings, **generation}
    chat.save()
    return chat


def first_body(chat):
    turn, _ = services.turn_create(conversation=chat, client_id="one", parent=None,
                                   input=[{"type": "text", "text": "hi"}])
    return payloads.request_body(chat, turn, None)


def test_a_schema_is_sent_as_the_seed_sends_it(alice):
    body = first_body(configured(alice, schema=RECIPE))
    assert body["response_format"] == {"type": "text", "mime_type": "application/json",
                                       "schema": RECIPE}
    assert payloads.sent_schema(body) == RECIPE


def test_tools_are_sent_with_every_turn_but_not_site_disabled_ones(alice, settings):
    chat = configured(alice, tools=["google_search", "url_context", "code_execution"])
    parent = exchange(chat, "first")
    assert body_for(chat, parent)["tools"] == [
        {"type": "google_search"}, {"type": "url_context"}, {"type": "code_execution"}]
    settings.DISABLED_TOOLS = ["url_context"]  # switched off after the conversation had it
    body = payloads.request_body(chat, chat.turns.get(client_id="next"), parent, [parent])
    assert body["previous_interaction_id"] == "int-first"
    assert body["tools"] == [{"type": "google_search"}, {"type": "code_execution"}]


def test_the_offline_model_is_sent_none_of_the_gemini_options(alice):
    chat = configured(alice, "local", tools=["google_search"], schema=RECIPE,
                      thinking_level="high", thinking_summaries="auto", aspect_ratio="16:9",
                      temperature=0.3, top_p=0.8, seed=7, stop_sequences=["END"])
    body = first_body(chat)
    assert "tools" not in body and "response_format" not in body
    assert body["generation_config"] == {"temperature": 0.3, "top_p": 0.8, "seed": 7,
                                         "stop_sequences": ["END"]}
    assert payloads.sent_schema(body) is None


def test_thought_summaries_are_a_setting_of_their_own(alice):
    level_only = first_body(configured(alice, thinking_level="low"))
    assert level_only["generation_config"] == {"thinking_level": "low"}
    summaries = first_body(configured(alice, thinking_summaries="auto"))
    assert summaries["generation_config"] == {"thinking_summaries": "auto"}
    hidden = first_body(configured(alice, thinking_level="high", thinking_summaries="none"))
    assert hidden["generation_config"] == {"thinking_level": "high", "thinking_summaries": "none"}


def test_a_conversation_saved_before_summaries_were_a_setting_still_gets_them(alice):
    chat = configured(alice, thinking_level="low")
    chat.generation_settings = {"temperature": None, "thinking_level": "low",
                                "max_output_tokens": None}  # a row from before
    chat.save()
    assert first_body(chat)["generation_config"] == {"thinking_level": "low",
                                                     "thinking_summaries": "auto"}


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, None),
    ({"aspect_ratio": "16:9", "image_size": "2K"},
     [{"type": "text"}, {"type": "image", "aspect_ratio": "16:9", "image_size": "2K"}]),
    ({"image_output": "image"}, {"type": "image"}),
    ({"image_output": "image", "aspect_ratio": "1:1"}, {"type": "image", "aspect_ratio": "1:1"}),
])
def test_image_options_go_in_response_format(alice, settings, expected):
    body = first_body(configured(alice, "gemini-3.1-flash-image", **settings))
    assert body.get("response_format") == expected
    assert "image_config" not in body.get("generation_config", {})  # deprecated


def test_image_options_mean_nothing_to_a_text_model(alice):
    body = first_body(configured(alice, aspect_ratio="16:9", image_output="image"))
    assert "response_format" not in body


# --- the bodies are what the official SDK's types describe --------------------------------------

def extras(value, path=()):
    """Where the SDK kept a field it does not know (its models allow extra fields)."""
    import pydantic

    found = []
    if isinstance(value, pydantic.BaseModel):
        found += [(*path, key) for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += extras(value.__dict__.get(name), (*path, name))  # no deprecation noise
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += extras(item, (*path, i))
    return found


def sdk_body(body):
    from google.genai._gaos.types import interactions as sdk

    parsed = sdk.CreateModelInteraction.model_validate(body)
    assert extras(parsed) == []
    assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == body
    return parsed


def test_a_body_with_every_text_option_fits_the_sdk_types(alice):
    from google.genai._gaos.types import interactions as sdk

    chat = configured(alice, tools=["google_search", "url_context", "code_execution",
                                    "google_maps"], schema=RECIPE, temperature=0.2, top_p=0.9,
                      seed=42, stop_sequences=["END", "###"], max_output_tokens=512,
                      thinking_level="high", thinking_summaries="auto")
    chat.system_instruction = "Answer in JSON."
    chat.save()
    parsed = sdk_body(first_body(chat))
    assert [type(t) for t in parsed.tools] == [sdk.GoogleSearch, sdk.URLContext,
                                               sdk.CodeExecution, sdk.GoogleMaps]
    assert isinstance(parsed.response_format, sdk.TextResponseFormat)
    assert parsed.response_format.schema_ == RECIPE
    config = parsed.generation_config
    assert (config.seed, config.stop_sequences, config.thinking_summaries) == (
        42, ["END", "###"], "auto")


def test_a_body_with_image_options_fits_the_sdk_types(alice):
    from google.genai._gaos.types import interactions as sdk

    chat = configured(alice, "gemini-3.1-flash-image", tools=["google_search"],
                      aspect_ratio="21:9", image_size="4K", thinking_level="minimal")
    text, image = sdk_body(first_body(chat)).response_format
    assert isinstance(text, sdk.TextResponseFormat) and text.mime_type is None
    assert isinstance(image, sdk.ImageResponseFormat)
    assert (image.aspect_ratio, image.image_size) == ("21:9", "4K")
    only = sdk_body(first_body(configured(alice, "gemini-3.1-flash-image",
                                          image_output="image", image_size="512")))
    assert isinstance(only.response_format, sdk.ImageResponseFormat)


@pytest.mark.parametrize("values", [
    {"aspect_ratio": ratio} for ratio in ("1:1", "9:16", "1:8", "4:1")
] + [{"image_size": size} for size in ("512", "1K", "2K", "4K")])
def test_every_image_choice_is_an_sdk_literal(alice, values):
    import typing

    from google.genai._gaos.types.interactions import imageresponseformat as types

    known = {"aspect_ratio": types.ImageResponseFormatAspectRatio,
             "image_size": types.ImageResponseFormatImageSize}
    [(key, value)] = values.items()
    literal = typing.get_args(known[key])[0]  # the Literal before the open UnrecognizedStr
    assert value in typing.get_args(literal)
    sdk_body(first_body(configured(alice, "gemini-3.1-flash-image", **values)))
