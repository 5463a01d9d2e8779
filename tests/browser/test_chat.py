"""The chat page in a real browser: streaming, stop, reload, branches, safety, offline model."""

import json
import re
import time

from playwright.sync_api import expect

from tests.browser.conftest import log_in

UUID = r"[0-9a-f-]{36}"


def new_chat(page, model: str | None = None) -> str:
    page.goto("/")
    page.get_by_role("button", name="New chat", exact=True).click()
    page.wait_for_url(re.compile(rf"/c/{UUID}/$"))
    # The composer takes a message once the socket's first snapshot is in.
    expect(page.locator("body")).to_have_attribute("data-connection", "online")
    conversation_id = page.url.rstrip("/").rsplit("/", 1)[1]
    if model:
        page.get_by_role("button", name="Conversation settings").click()
        page.get_by_label("Model").select_option(model)
        page.get_by_role("button", name="Save").click()
    return conversation_id


def say(page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def reply(page, n: int = -1):
    replies = page.locator(".msg-reply")
    return replies.last if n == -1 else replies.nth(n)


def creates(upstream) -> list[dict]:
    return [r.json for r in upstream.find_requests("POST", r"/interactions$")]


def stored_turns(site, conversation_id: str) -> list[tuple]:
    return site.query("SELECT id, status, steps FROM conversations_turn WHERE "
                      "conversation_id = ? ORDER BY created", conversation_id.replace("-", ""))


def wait_finished(site, conversation_id: str, count: int = 1) -> list[tuple]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        turns = stored_turns(site, conversation_id)
        if len(turns) >= count and all(t[1] not in ("queued", "in_progress") for t in turns):
            return turns
        time.sleep(0.1)
    raise AssertionError(f"turns still running: {stored_turns(site, conversation_id)}")


def reply_text(steps_json: str) -> str:
    return "".join(block["text"] for step in json.loads(steps_json)
                   if step["type"] == "model_output" for block in step["content"]
                   if block["type"] == "text")


def words(text: str) -> list[str]:
    return text.split()


def test_it_streams_a_reply(alice_page):
    page = alice_page
    new_chat(page)
    send = page.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    say(page, "hello browser")
    expect(reply(page)).to_contain_text("Echo: hello browser")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(reply(page).locator(".usage")).to_contain_text("tokens")
    expect(page.locator("#sidebar")).to_contain_text("hello browser")


def test_shift_enter_adds_a_line_and_enter_sends(alice_page, upstream):
    page = alice_page
    new_chat(page)
    box = page.get_by_role("textbox", name="Message")
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    box.press("Enter")
    expect(reply(page)).to_contain_text("Echo:")
    assert creates(upstream)[-1]["input"][-1]["content"][0]["text"] == "first line\nsecond line"


def test_stop_keeps_the_partial_reply(alice_page, upstream, site):
    page = alice_page
    upstream.configure(delta_interval=0.05, deltas=400)
    conversation_id = new_chat(page)
    say(page, "talk for a while")
    expect(reply(page)).to_contain_text("lorem")
    page.get_by_role("button", name="Stop").click()
    expect(reply(page)).to_contain_text("Stopped")
    [(_, status, steps)] = wait_finished(site, conversation_id)
    assert status == "cancelled"
    partial = reply_text(steps)
    assert 0 < len(words(partial)) < 400
    page.reload()
    expect(reply(page)).to_contain_text("Stopped")
    assert words(reply(page).locator(".steps").inner_text()) == words(partial)


def test_a_reload_mid_stream_shows_everything_once_and_keeps_streaming(alice_page, upstream,
                                                                      site):
    page = alice_page
    upstream.configure(delta_interval=0.03, deltas=150)
    conversation_id = new_chat(page)
    say(page, "reload me")
    expect(reply(page)).to_contain_text("lorem ipsum")
    page.reload()
    expect(reply(page)).to_contain_text("lorem")
    [(_, status, steps)] = wait_finished(site, conversation_id)
    assert status == "completed" and len(words(reply_text(steps))) == 150
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    assert words(reply(page).locator(".steps").inner_text()) == words(reply_text(steps))


def test_two_tabs_both_stream(alice_page, upstream, site):
    page = alice_page
    upstream.configure(delta_interval=0.02, deltas=60)
    new_chat(page)
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.get_by_role("textbox", name="Message")).to_be_enabled()
    say(page, "both tabs")
    expect(other.locator(".msg-user").last).to_contain_text("both tabs")
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=20_000)
    expect(other.get_by_role("button", name="Regenerate")).to_be_visible()
    assert words(other.locator(".msg-reply .steps").last.inner_text()) == words(
        reply(page).locator(".steps").inner_text())


def test_stateful_turns_chain_on_the_previous_interaction(alice_page, upstream):
    page = alice_page
    new_chat(page)
    say(page, "I have 2 dogs.")
    expect(reply(page)).to_contain_text("Echo: I have 2 dogs.")
    say(page, "How many paws?")
    expect(reply(page, 1)).to_contain_text("Echo: How many paws?")
    first, second = creates(upstream)
    first_id = next(i for i, r in upstream.interactions.items() if r.body == first)
    assert second["previous_interaction_id"] == first_id
    assert "store" not in second


def test_stateless_turns_send_the_whole_history(alice_page, upstream):
    page = alice_page
    new_chat(page)
    page.get_by_role("button", name="Conversation settings").click()
    page.get_by_label("Stateful conversation").uncheck()
    page.get_by_role("button", name="Save").click()
    say(page, "I have 2 dogs.")
    expect(reply(page)).to_contain_text("Echo: I have 2 dogs.")
    say(page, "How many paws?")
    expect(reply(page, 1)).to_contain_text("Echo: How many paws?")
    second = creates(upstream)[1]
    assert second["store"] is False and "previous_interaction_id" not in second
    assert [step["type"] for step in second["input"]] == ["user_input", "model_output",
                                                          "user_input"]


def test_regenerate_and_edit_make_branches_you_can_move_between(alice_page):
    page = alice_page
    new_chat(page)
    say(page, "first question")
    expect(reply(page)).to_contain_text("Echo: first question")
    page.get_by_role("button", name="Regenerate").click()
    expect(page.locator(".branch-pos")).to_have_text("2/2")
    expect(reply(page)).to_contain_text("Echo: first question")
    page.get_by_role("button", name="Previous version").click()
    expect(page.locator(".branch-pos")).to_have_text("1/2")
    page.get_by_role("button", name="Edit").click()
    edit = page.get_by_role("textbox", name="Edit message")
    edit.fill("an edited question")
    edit.press("Enter")
    expect(reply(page)).to_contain_text("Echo: an edited question")
    expect(page.locator(".branch-pos")).to_have_text("3/3")


def test_model_output_is_sanitized_and_code_is_highlighted(alice_page, upstream):
    page = alice_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    hostile = ("Look <img src=x onerror=\"alert('xss')\"> and <script>alert('s')</script>"
               "[link](https://example.org)\n\n```python\nprint('hi')\n```\n\n"
               "| a | b |\n|---|---|\n| 1 | 2 |\n")
    off_site = ["/\\evil.example/x.png", "//evil.example/y.png", "https://evil.example/z.png"]
    upstream.script({"status": "completed", "steps": [
        {"type": "model_output", "content": [{"type": "text", "text": hostile}] + [
            {"type": "image", "uri": uri, "mime_type": "image/png"} for uri in off_site]}]})
    requested = []
    page.on("request", lambda request: "evil.example" in request.url
            and requested.append(request.url))
    new_chat(page)
    say(page, "be nasty")
    body = reply(page)
    expect(body.locator("pre code")).to_contain_text("print('hi')")
    expect(body.get_by_role("button", name=re.compile("Copy", re.I)).first).to_be_visible()
    expect(body.locator("table td").first).to_have_text("1")
    assert body.locator("script").count() == 0
    assert body.locator("img[onerror]").count() == 0
    expect(body.get_by_role("link", name="Open image (image/png)")).to_have_count(3)
    assert body.locator("img[src*='evil.example']").count() == 0
    link = body.get_by_role("link", name="link")
    assert set(link.get_attribute("rel").split()) >= {"noopener", "noreferrer", "nofollow"}
    page.wait_for_timeout(300)
    assert dialogs == [] and requested == []  # nothing was loaded from elsewhere


def test_an_upstream_error_is_shown_in_place_with_a_retry(alice_page, upstream):
    page = alice_page
    new_chat(page)
    upstream.fault(500, times=None, method="POST", message="The model is overloaded")
    say(page, "will fail")
    alert = reply(page).get_by_role("alert")
    expect(alert).to_be_visible(timeout=20_000)
    # One way to try again: Retry beside the message, no Regenerate as well.
    expect(reply(page).get_by_role("button", name="Regenerate")).to_have_count(0)
    upstream.reset()
    alert.get_by_role("button", name="Retry").click()
    expect(reply(page)).to_contain_text("Echo: will fail")


def test_another_users_conversation_and_socket_are_refused(alice_page, bob_page, site):
    conversation_id = new_chat(alice_page)
    response = bob_page.goto(f"/c/{conversation_id}/")
    assert response.status == 404
    received = bob_page.evaluate("""(url) => new Promise((resolve) => {
        const ws = new WebSocket(url);
        const messages = [];
        ws.onmessage = (event) => messages.push(event.data);
        ws.onclose = (event) => resolve({code: event.code, messages});
    })""", f"{site.url.replace('http', 'ws')}/ws/conversations/{conversation_id}/")
    assert received == {"code": 4404, "messages": []}


def test_the_local_model_answers_offline(alice_page, upstream):
    page = alice_page
    new_chat(page, model="local")
    say(page, "Say hello in one short sentence.")
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=60_000)
    assert reply(page).locator(".steps").inner_text().strip()
    assert creates(upstream) == []


def test_it_follows_the_system_theme_until_the_person_picks_one(browser, site):
    page = log_in(browser, site, "alice", color_scheme="dark")
    root = page.locator("html")
    expect(root).to_have_attribute("data-theme", "dark")
    page.get_by_role("button", name="Dark theme").click()
    expect(root).to_have_attribute("data-theme", "light")
    page.reload()
    expect(root).to_have_attribute("data-theme", "light")
    page.context.close()


def test_it_is_usable_on_a_phone(browser, site):
    page = log_in(browser, site, "alice", viewport={"width": 390, "height": 844},
                  is_mobile=True, has_touch=True)
    page.goto("/")
    sidebar = page.locator("#sidebar")
    expect(sidebar).not_to_be_in_viewport()
    page.get_by_role("button", name="Open sidebar").click()
    expect(sidebar).to_be_in_viewport()
    page.get_by_role("button", name="New chat", exact=True).click()
    page.wait_for_url(re.compile(rf"/c/{UUID}/$"))
    expect(sidebar).not_to_be_in_viewport()
    say(page, "hello from a phone")
    expect(reply(page)).to_contain_text("Echo: hello from a phone")
    page.context.close()
