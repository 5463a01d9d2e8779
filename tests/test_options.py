"""The checks of a conversation's options and of a structured reply (conversations/options.py),
and the catalogue's word on which model takes which option."""

import pytest

from conversations import catalogue, options

GEMINI = catalogue.model_info("gemini-3.5-flash")
IMAGE = catalogue.model_info("gemini-3.1-flash-image")
LOCAL = catalogue.local_model()
RECIPE = {"type": "object", "properties": {"name": {"type": "string"},
                                           "minutes": {"type": "integer"}},
          "required": ["name"]}


def reply(*texts):
    return [{"type": "thought", "signature": "c2ln"},
            {"type": "model_output", "content": [{"type": "text", "text": t} for t in texts]}]


# --- generation settings ------------------------------------------------------------------

@pytest.mark.parametrize(("values", "field", "words"), [
    ({"top_p": 1.5}, "top_p", "between 0 and 1"),
    ({"top_p": True}, "top_p", "between 0 and 1"),
    ({"seed": 1.5}, "seed", "whole number"),
    ({"seed": 2**31}, "seed", "whole number"),
    ({"stop_sequences": ["a", ""]}, "stop_sequences", "non-empty"),
    ({"stop_sequences": "END"}, "stop_sequences", "list"),
    ({"stop_sequences": list("abcdef")}, "stop_sequences", "At most 5"),
    ({"stop_sequences": ["x" * 201]}, "stop_sequences", "200 characters"),
    ({"thinking_summaries": "always"}, "thinking_summaries", "auto, none"),
    ({"aspect_ratio": "7:3"}, "aspect_ratio", "16:9"),
    ({"image_size": "8K"}, "image_size", "4K"),
    ({"image_output": "text"}, "image_output", "image"),
])
def test_it_explains_a_bad_value(values, field, words):
    errors = options.generation_errors(values, IMAGE if field.startswith("image") else GEMINI)
    assert words in errors[field]


@pytest.mark.parametrize("values", [
    {"top_p": 0}, {"top_p": 1}, {"seed": -(2**31)}, {"seed": 2**31 - 1},
    {"stop_sequences": [" END", "###"]}, {"stop_sequences": None}, {"stop_sequences": []},
    {"thinking_summaries": "auto"}, {"thinking_summaries": "none"}, {"thinking_summaries": ""},
])
def test_it_accepts_values_at_the_limits(values):
    assert options.generation_errors(values, GEMINI) == {}


def test_each_option_is_only_for_the_models_that_take_it():
    assert "image models" in options.generation_errors({"aspect_ratio": "16:9"},
                                                       GEMINI)["aspect_ratio"]
    assert options.generation_errors({"aspect_ratio": "16:9", "image_size": "2K",
                                      "image_output": "image"}, IMAGE) == {}
    assert "does not think" in options.generation_errors({"thinking_summaries": "auto"},
                                                         LOCAL)["thinking_summaries"]
    assert "does not take" in options.generation_errors({"stop_sequences": ["x"]},
                                                        IMAGE)["stop_sequences"]
    # The offline model (llama.cpp) samples with all of these.
    assert options.generation_errors({"top_p": 0.5, "seed": 7, "stop_sequences": ["x"]},
                                     LOCAL) == {}


def test_an_unset_option_is_fine_for_any_model():
    unset = {"thinking_level": "", "thinking_summaries": "", "aspect_ratio": "",
             "stop_sequences": None}
    assert options.generation_errors(unset, LOCAL) == {}


# --- tools ---------------------------------------------------------------------------------

def test_it_refuses_unknown_and_site_disabled_tools():
    assert "Unknown tools: file_search" in options.tools_error(
        ["file_search"], GEMINI, before=[], disabled=frozenset())
    error = options.tools_error(["google_search", "google_maps"], GEMINI, before=[],
                                disabled=frozenset({"google_maps"}))
    assert "Google Maps is turned off on this server" in error
    assert options.tools_error(["google_search", "url_context"], GEMINI, before=[],
                               disabled=frozenset({"google_maps"})) is None


def test_a_model_takes_only_its_tools_but_keeps_those_it_had():
    assert "can use Google Search only" in options.tools_error(
        ["code_execution"], IMAGE, before=[], disabled=frozenset())
    assert options.tools_error(["code_execution"], IMAGE, before=["code_execution"],
                               disabled=frozenset()) is None
    assert "tools need a Gemini model" in options.tools_error(
        ["google_search"], LOCAL, before=[], disabled=frozenset())


def test_only_site_enabled_tools_the_model_takes_are_usable(settings):
    settings.DISABLED_TOOLS = ["url_context"]
    names = ["url_context", "google_search", "code_execution", "nonsense"]
    assert catalogue.usable_tools(GEMINI, names) == ["google_search", "code_execution"]
    assert catalogue.usable_tools(IMAGE, names) == ["google_search"]
    assert catalogue.usable_tools(LOCAL, names) == []
    assert [t.name for t in catalogue.offered_tools()] == ["google_search", "code_execution",
                                                           "google_maps"]


def test_a_misspelt_disabled_tool_fails_the_system_check(settings):
    from conversations.checks import check_disabled_tools

    settings.DISABLED_TOOLS = ["google_maps"]
    assert check_disabled_tools() == []
    settings.DISABLED_TOOLS = ["google_map"]
    [error] = check_disabled_tools()
    assert "google_map" in error.msg and "google_maps" in error.hint


# --- response schema --------------------------------------------------------------------------

@pytest.mark.parametrize(("schema", "words"), [
    ({"type": "strin"}, "not a valid JSON Schema"),
    ({"properties": {"a": {"type": 3}}}, "(at /properties/a/type)"),
    ({"type": "object", "required": "name"}, "not a valid JSON Schema"),
    ([{"type": "string"}], "JSON object"),
    ("string", "JSON object"),
])
def test_it_checks_a_schema_against_the_meta_schema(schema, words):
    assert words in options.schema_error(schema, GEMINI, limit=10_000)


def test_a_schema_over_the_limit_says_the_limit():
    schema = {"type": "object", "description": "x" * 200}
    error = options.schema_error(schema, GEMINI, limit=100)
    assert "at most 100" in error and "MAX_RESPONSE_SCHEMA_BYTES" in error
    assert options.schema_error(schema, GEMINI, limit=1000) is None


def test_a_schema_needs_a_model_that_takes_one():
    assert options.schema_error(RECIPE, GEMINI, limit=10_000) is None
    assert "Gemini 3.1 Flash Image cannot be held" in options.schema_error(RECIPE, IMAGE,
                                                                         limit=10_000)
    assert "offline model" in options.schema_error(RECIPE, LOCAL, limit=10_000)
    assert options.schema_error(None, LOCAL, limit=10_000) is None  # removing one is fine


# --- a reply against its schema --------------------------------------------------------------

def test_a_reply_that_follows_the_schema_is_valid():
    assert options.check_output(reply('{"name": "Bread",', ' "minutes": 15}'), RECIPE) == {
        "valid": True, "error": None}


def test_a_reply_that_is_not_json_says_where():
    check = options.check_output(reply('{"name": "Bread" "minutes": 15}'), RECIPE)
    assert check["valid"] is False
    assert check["error"].startswith("The reply is not valid JSON: Expecting ',' delimiter")
    assert "line 1, column 18" in check["error"]


def test_a_reply_that_breaks_the_schema_says_what_and_where():
    check = options.check_output(reply('{"name": "Bread", "minutes": "soon"}'), RECIPE)
    assert check == {"valid": False, "error": "The reply does not match the schema: 'soon' is "
                     "not of type 'integer' (at /minutes)."}
    missing = options.check_output(reply('{"minutes": 3}'), RECIPE)
    assert "'name' is a required property" in missing["error"]


def test_an_empty_reply_is_not_json():
    assert options.check_output([], RECIPE)["valid"] is False
