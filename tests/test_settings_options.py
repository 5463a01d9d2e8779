"""The settings dialog's new options through the view: tools, response schema, thinking
summaries, sampling, image options; errors come back next to their field, nothing is lost."""

import json

import pytest

from conversations import services
from tests.test_views import JSON, chat_url, settings_data

pytestmark = pytest.mark.django_db

RECIPE = {"type": "object", "properties": {"name": {"type": "string"}}}


@pytest.fixture
def gemini_chat(alice, settings):
    settings.GEMINI_API_KEY = "key"
    return services.conversation_create(owner=alice, model="gemini-3.5-flash")


def post(client, chat, **fields):
    data = settings_data(**{"model": chat.model, **fields})
    return client.post(chat_url(chat, "settings"), data, **JSON)


def test_it_saves_every_option(alice_client, gemini_chat):
    response = post(alice_client, gemini_chat, tool_google_search="on", tool_url_context="on",
                    response_schema=json.dumps(RECIPE), thinking_summaries="auto",
                    top_p="0.9", seed="42", stop_sequences="END\n\n ###\n")
    assert response.status_code == 200, response.json()
    gemini_chat.refresh_from_db()
    assert gemini_chat.tools == ["google_search", "url_context"]
    assert gemini_chat.response_schema == RECIPE
    generation = gemini_chat.generation_settings
    assert (generation["top_p"], generation["seed"]) == (0.9, 42)
    assert generation["stop_sequences"] == ["END", " ###"]  # one per line, spaces kept
    assert generation["thinking_summaries"] == "auto"
    assert response.json()["conversation"]["active_settings"] == [
        "System instruction", "Google Search", "URL context", "JSON schema",
        "Thought summaries"]


@pytest.mark.parametrize(("text", "words"), [
    ('{"type": "object",}', "This is not valid JSON: Expecting property name"),
    ('{"type": "strin"}', "This is not a valid JSON Schema: 'strin' is not valid"),
    ('["type"]', "A response schema is a JSON object"),
])
def test_a_bad_schema_is_explained_next_to_the_field(alice_client, gemini_chat, text, words):
    response = post(alice_client, gemini_chat, response_schema=text, system_instruction="New")
    assert response.status_code == 400
    assert words in response.json()["errors"]["response_schema"][0]
    gemini_chat.refresh_from_db()
    assert gemini_chat.system_instruction == "" and gemini_chat.response_schema is None


def test_a_schema_over_the_limit_is_refused_with_the_limit(alice_client, gemini_chat, settings):
    settings.MAX_RESPONSE_SCHEMA_BYTES = 50
    schema = json.dumps({"type": "object", "description": "a" * 60})
    error = post(alice_client, gemini_chat, response_schema=schema).json()["errors"]
    assert "at most 50" in error["response_schema"][0]


def test_a_plain_post_shows_the_schema_error_in_the_dialog(alice_client, gemini_chat):
    data = settings_data(model=gemini_chat.model, response_schema='{"type": 7}')
    response = alice_client.post(chat_url(gemini_chat, "settings"), data)
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_response_schema-error"' in html and "not a valid JSON Schema" in html
    assert "{&quot;type&quot;: 7}" in html  # what was typed is still there


def test_clearing_the_schema_removes_it(alice_client, gemini_chat):
    post(alice_client, gemini_chat, response_schema=json.dumps(RECIPE))
    post(alice_client, gemini_chat, response_schema="  ")
    gemini_chat.refresh_from_db()
    assert gemini_chat.response_schema is None


def test_the_offline_model_keeps_tools_and_schema_it_cannot_use(alice_client, gemini_chat):
    post(alice_client, gemini_chat, tool_code_execution="on", response_schema=json.dumps(RECIPE))
    # The page disables (so does not post) the schema and the tools for the offline model.
    response = post(alice_client, gemini_chat, model="local")
    assert response.status_code == 200
    gemini_chat.refresh_from_db()
    assert gemini_chat.model == "local"
    assert gemini_chat.tools == ["code_execution"] and gemini_chat.response_schema == RECIPE
    assert response.json()["conversation"]["active_settings"] == ["System instruction"]


def test_the_offline_model_refuses_a_schema_posted_for_it(alice_client, conversation):
    response = post(alice_client, conversation, response_schema=json.dumps(RECIPE))
    assert "offline model cannot be held" in response.json()["errors"]["response_schema"][0]


def test_a_site_disabled_tool_is_not_offered_and_refused(alice_client, gemini_chat, settings):
    settings.DISABLED_TOOLS = ["google_maps"]
    html = alice_client.get(chat_url(gemini_chat)).content.decode()
    assert 'name="tool_google_search"' in html and 'name="tool_google_maps"' not in html
    response = post(alice_client, gemini_chat, tool_google_maps="on")
    assert response.status_code == 400
    assert "Google Maps is turned off on this server" in response.json()["errors"]["__all__"][0]


def test_image_options_are_for_image_models(alice_client, gemini_chat):
    refused = post(alice_client, gemini_chat, aspect_ratio="16:9")
    assert "image models" in refused.json()["errors"]["aspect_ratio"][0]
    response = post(alice_client, gemini_chat, model="gemini-3.1-flash-image", aspect_ratio="16:9",
                    image_size="2K", image_output="image", tool_google_search="on")
    assert response.status_code == 200, response.json()
    assert response.json()["conversation"]["active_settings"] == [
        "System instruction", "Google Search", "16:9", "2K", "Image only"]


@pytest.mark.parametrize(("field", "value", "words"), [
    ("top_p", "1.5", "between 0 and 1"),
    ("seed", "1.5", "whole number"),
    ("seed", "99999999999", "whole number between"),
    ("stop_sequences", "a\nb\nc\nd\ne\nf", "At most 5"),
    ("thinking_summaries", "always", "Select a valid choice"),
])
def test_it_explains_a_bad_sampling_value(alice_client, gemini_chat, field, value, words):
    response = post(alice_client, gemini_chat, **{field: value})
    assert response.status_code == 400
    assert words in response.json()["errors"][field][0]
