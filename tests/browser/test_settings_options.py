"""Conversation options in a real browser: tools, structured output, thought summaries, the
line of active settings, and what the offline model and the site's admin leave out.

This module runs its own server with DISABLED_TOOLS=google_maps (the admin's switch).
"""

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Site, log_in
from tests.browser.test_chat import creates, new_chat, reply, say
from tests.daphne import daphne

RECIPE = {"type": "object", "properties": {"name": {"type": "string"},
                                           "minutes": {"type": "integer"}},
          "required": ["name"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory, upstream):
    tmp = tmp_path_factory.mktemp("options-site")
    create = ("from django.contrib.auth.models import User\n"
              f"User.objects.create_user('alice', password={PASSWORD!r})\n")
    with daphne(tmp, create, GEMINI_API_KEY=upstream.api_key,
                GEMINI_API_BASE_URL=upstream.base_url, DISABLED_TOOLS="google_maps") as server:
        yield Site(url=f"http://127.0.0.1:{server.port}", database=tmp / "db.sqlite3")


@pytest.fixture
def page(browser, site):
    page = log_in(browser, site, "alice", permissions=["clipboard-read", "clipboard-write"])
    yield page
    page.context.close()


def json_reply(text: str) -> dict:
    return {"id": "v1_json", "status": "completed",
            "steps": [{"type": "model_output", "content": [{"type": "text", "text": text}]}]}


def open_settings(page):
    page.get_by_role("button", name="Conversation settings").click()
    dialog = page.get_by_role("dialog", name="Conversation settings")
    expect(dialog).to_be_visible()
    return dialog


def save(dialog):
    dialog.get_by_role("button", name="Save").click()


def test_a_bad_schema_is_explained_next_to_the_field_and_kept(page):
    new_chat(page, model="gemini-3.5-flash")
    dialog = open_settings(page)
    schema = dialog.get_by_label("Response schema (JSON Schema)")
    schema.fill('{"type": "strin"}')
    save(dialog)
    error = dialog.locator("#id_response_schema-error")
    expect(error).to_contain_text("This is not a valid JSON Schema: 'strin' is not valid")
    expect(schema).to_have_attribute("aria-invalid", "true")
    expect(schema).to_have_value('{"type": "strin"}')  # nothing typed is lost
    schema.fill('{"type": "object",}')
    save(dialog)
    expect(error).to_contain_text("This is not valid JSON: Expecting property name")


def test_a_structured_reply_is_pretty_printed_copyable_and_marked_when_invalid(page, upstream):
    new_chat(page, model="gemini-3.5-flash")
    dialog = open_settings(page)
    dialog.get_by_label("Response schema (JSON Schema)").fill(json.dumps(RECIPE))
    save(dialog)
    line = page.locator("#active-settings")
    expect(line).to_contain_text("JSON schema")

    upstream.script(json_reply('{"name":"Bread","minutes":15}'),
                    json_reply('{"name": "Bread", "minutes": "soon"}'))
    say(page, "A recipe, please")
    block = reply(page).locator(".json-reply")
    pretty = json.dumps({"name": "Bread", "minutes": 15}, indent=2)
    expect(block.locator("pre")).to_have_text(pretty)
    expect(reply(page).locator(".output-check")).to_contain_text("follows the response schema")
    block.get_by_role("button", name="Copy JSON").click()
    expect(block.get_by_role("button", name="Copy JSON")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == pretty
    assert creates(upstream)[-1]["response_format"]["schema"] == RECIPE

    say(page, "Another")
    check = reply(page).locator(".output-check.invalid")
    expect(check).to_contain_text("Does not validate")
    expect(check).to_contain_text("'soon' is not of type 'integer' (at /minutes)")
    page.reload()  # the mark is stored with the turn
    expect(reply(page).locator(".output-check.invalid")).to_contain_text("(at /minutes)")
    expect(reply(page, 0).locator(".output-check.valid")).to_be_visible()


def test_tools_show_in_the_active_line_which_opens_the_dialog(page, upstream):
    new_chat(page, model="gemini-3.5-flash")
    line = page.locator("#active-settings")
    expect(line).to_be_hidden()  # nothing beyond the plain model yet
    dialog = open_settings(page)
    dialog.get_by_label("Google Search").check()
    dialog.get_by_label("Code execution").check()
    expect(dialog.get_by_label("Google Maps")).to_have_count(0)  # the admin turned it off
    save(dialog)
    expect(line.locator(".active-item")).to_have_text(["Google Search", "Code execution"])
    say(page, "What is new?")
    expect(reply(page)).to_contain_text("Echo: What is new?")
    assert creates(upstream)[-1]["tools"] == [{"type": "google_search"},
                                              {"type": "code_execution"}]
    line.click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Google Search")).to_be_checked()


def test_the_offline_model_disables_the_gemini_only_options(page):
    new_chat(page, model="gemini-3.5-flash")
    dialog = open_settings(page)
    dialog.get_by_label("Google Search").check()
    dialog.get_by_label("Model").select_option("local")
    for label in ("Google Search", "URL context", "Response schema (JSON Schema)",
                  "Thought summaries", "Thinking level", "Aspect ratio"):
        expect(dialog.get_by_label(label)).to_be_disabled()
    for label in ("Temperature", "Top-p", "Seed", "Stop sequences"):  # llama.cpp has these
        expect(dialog.get_by_label(label)).to_be_enabled()
    tools = dialog.locator("fieldset", has=page.locator("legend", has_text="Tools"))
    expect(tools.locator(".unsupported-note")).to_have_text(
        "The offline model cannot search, read pages or run code: tools need a Gemini model.")
    expect(dialog.get_by_text("structured output needs a Gemini model")).to_be_visible()
    dialog.get_by_label("Model").select_option("gemini-3.1-flash-image")
    expect(dialog.get_by_label("Aspect ratio")).to_be_enabled()
    expect(dialog.get_by_label("Google Search")).to_be_enabled()
    expect(dialog.get_by_label("Code execution")).to_be_disabled()
    expect(dialog.get_by_label("Response schema (JSON Schema)")).to_be_disabled()


def test_thought_summaries_stream_in_and_a_bare_signature_shows_nothing(page, upstream):
    new_chat(page, model="gemini-3.5-flash")
    dialog = open_settings(page)
    dialog.get_by_label("Thinking level").select_option("low")  # a thought, signature only
    save(dialog)
    expect(page.locator("#active-settings")).to_contain_text("Thinking: low")
    say(page, "quiet thinking")
    expect(reply(page)).to_contain_text("Echo: quiet thinking")
    expect(reply(page).locator(".thought")).to_have_count(0)
    expect(page.get_by_text("No summary of the thinking")).to_have_count(0)

    dialog = open_settings(page)
    dialog.get_by_label("Thought summaries").select_option("auto")
    save(dialog)
    expect(page.locator("#active-settings")).to_contain_text("Thought summaries")
    upstream.configure(delta_interval=0.4)  # slow enough to watch the summary arrive
    say(page, "think aloud")
    live = reply(page).locator(".thought.live")
    expect(live).to_contain_text("The user wants their words back")  # the first part, live
    expect(live.locator("summary")).to_have_text("Thinking… Echoing it")  # the latest heading
    thought = reply(page).locator(".thought")
    expect(thought.locator("summary")).to_have_text("Thoughts")
    thought.locator("summary").click()
    expect(thought).to_contain_text("I will repeat the message")
    expect(reply(page)).to_contain_text("Echo: think aloud")
    assert "RmFrZVRob3VnaHRTaWduYXR1cmU" not in page.content()  # signatures are never shown
    assert creates(upstream)[-1]["generation_config"] == {"thinking_level": "low",
                                                          "thinking_summaries": "auto"}
