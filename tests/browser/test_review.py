"""The read-only conversation page in a real browser: a reviewer's view and a shared link,
drawn by the chat page's renderers, running nothing from model output, opening no socket."""

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.daphne import daphne

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAAB"
       "JRU5ErkJggg==")
SENTENCE = "Spain won Euro 2024, defeating England 2-1 in the final."
# Model output that tries to run script every way markdown and HTML allow.
HOSTILE = ('<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> '
           '[click me](javascript:window.pwned=3) <iframe src="javascript:parent.pwned=4">'
           '</iframe> <a href="#" onclick="window.pwned=5">plain link</a>')

SETUP = f"""
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore
from conversations import selectors, services
from conversations.generated import save_generated
from conversations.models import Turn
from tests import samples

def signed_in(user):
    session = SessionStore()
    session.update({{SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                    BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"}})
    session.create()
    return session.session_key

alice = User.objects.create_user("alice", password="x")
rita = User.objects.create_user("rita", password="x", is_staff=True)
rita.user_permissions.add(Permission.objects.get(codename="review_conversation"))
bob = User.objects.create_user("bob", password="x")
chat = services.conversation_create(owner=alice, model="gemini-3.5-flash", title="Euro 2024")
# Stored files: one sent with the first message, one its reply generated.
photo, drawn = (save_generated(owner_id=alice.pk, data=samples.png(rgb=rgb), kind="image",
                               name=name) for name, rgb in (("photo.png", b"\x10\x20\x30"),
                                                            ("drawn.png", b"\x30\x20\x10")))

def turn(name, parent, steps, files=(), **fields):
    return Turn.objects.create(conversation=chat, client_id=name, parent=parent, seq=1,
                               input=[{{"type": "text", "text": name}}, *files], steps=steps,
                               **{{"status": "completed", **fields}})

first = turn("Who won?", None, files=[selectors.attachment_block(photo)], steps=[
    {{"type": "thought", "signature": "c2ln",
      "summary": [{{"type": "text", "text": "Recalling **the final** in Berlin."}}]}},
    {{"type": "model_output", "content": [
        {{"type": "text", "text": {SENTENCE!r} + "\\n\\n- **Spain**: 2\\n- England: 1",
          "annotations": [{{"type": "url_citation", "url": "https://www.uefa.com/euro2024/",
                            "title": "UEFA EURO 2024", "start_index": 0, "end_index": 56}}]}},
        {{"type": "image", "mime_type": "image/png", "data": {PNG!r}}},
        selectors.attachment_block(drawn)]}}],
    usage={{"total_input_tokens": 8, "total_output_tokens": 12, "total_tokens": 197}})
turn("And the score?", first, [{{"type": "model_output", "content": [
    {{"type": "text", "text": "The first version of the answer."}}]}}])
second = turn("And the score, again?", first, [{{"type": "model_output", "content": [
    {{"type": "text", "text": "The second version of the answer."}}]}}])
last = turn("Anything else?", second, [{{"type": "model_output", "content": [
    {{"type": "text", "text": {HOSTILE!r}}}]}}], status="failed",
    error={{"code": "unavailable", "message": "The model is overloaded. Try again later.",
           "retryable": True}})
chat.branch_leaf = last
chat.save()
print(signed_in(alice), signed_in(rita), signed_in(bob), chat.pk)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    with daphne(tmp, SETUP) as server:
        alice, rita, bob, chat = server.printed[-4:]
        server.sessions = {"alice": alice, "rita": rita, "bob": bob}
        server.chat = chat
        server.url = f"http://127.0.0.1:{server.port}"
        server.database = tmp / "db.sqlite3"
        yield server


def open_as(browser, server, who: str | None):
    context = browser.new_context(base_url=server.url)
    if who:
        context.add_cookies([{"name": "sessionid", "value": server.sessions[who],
                              "url": server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.sockets = []
    page.refused = []  # our Content-Security-Policy must never have to block anything
    page.on("websocket", lambda ws: page.sockets.append(ws.url))
    page.on("console", lambda m: "Content Security Policy" in m.text
            and page.refused.append(m.text))
    return page


def assert_rendered_safely(page) -> None:
    """The chat's renderers drew markdown, a thought, a citation, an image, usage and an
    error; nothing from the model ran, and nothing offers to change the conversation."""
    turns = page.locator("#turns")
    expect(turns.locator(".md strong", has_text="Spain")).to_be_visible()
    expect(turns.locator(".md li")).to_have_count(2)
    thought = turns.locator("details.thought")
    thought.locator("summary").click()
    expect(thought.locator("strong", has_text="the final")).to_be_visible()
    cite = turns.locator("sup.cite a")
    expect(cite).to_have_attribute("href", "https://www.uefa.com/euro2024/")
    expect(cite).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(turns.locator(".sources a", has_text="UEFA EURO 2024")).to_be_visible()
    expect(turns.locator("figure.media img[src^='data:']")).to_have_attribute(
        "src", f"data:image/png;base64,{PNG}")
    expect(turns.locator(".usage").first).to_have_text("8 in · 12 out · 197 total tokens")
    failed = turns.locator(".status.failed")
    expect(failed).to_contain_text("The model is overloaded. Try again later.")
    expect(turns.locator(".step-output", has_text="plain link")).to_be_visible()
    page.wait_for_timeout(300)  # let an onerror that slipped through fire
    assert page.evaluate("window.pwned") is None
    assert turns.locator("script, iframe:not([sandbox]), [onerror], [onclick]").count() == 0
    assert turns.locator("a[href^='javascript']").count() == 0
    for name in ("Retry", "Regenerate", "Edit", "Send", "Stop"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("textbox")).to_have_count(0)
    assert page.sockets == []
    assert page.refused == []


def assert_files_shown(page, src: str) -> None:
    """The stored files (an upload, a generated image) load from addresses matching `src`."""
    for name in ("photo.png", "drawn.png"):
        image = page.locator(f"#turns img[alt='{name}']")
        expect(image).to_have_attribute("src", re.compile(src))
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle())


def review_logs(server) -> list[tuple]:
    with sqlite3.connect(server.database) as db:
        return db.execute("SELECT reviewer_name, owner_name, conversation_title "
                          "FROM conversations_reviewlog").fetchall()


def test_a_reviewer_sees_every_branch_as_its_owner_saw_it(browser, server):
    page = open_as(browser, server, "rita")
    page.goto(f"/admin/conversations/conversation/{server.chat}/")
    page.get_by_role("link", name="Review as the owner saw it").click()
    expect(page.get_by_role("heading", name="Euro 2024")).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("Reviewing alice’s conversation")
    assert_rendered_safely(page)
    assert_files_shown(page, r"^/files/[0-9a-f-]{36}/$")
    # The branch the owner had on screen, then the other version of the second message.
    bubbles = page.locator(".msg-user .bubble")
    asked = re.compile(r"^Who won\?photo\.png")  # the text, then the file's caption
    expect(bubbles).to_have_text([asked, "And the score, again?", "Anything else?"])
    expect(page.locator(".branch-pos")).to_have_text("2/2")
    page.get_by_role("button", name="Previous version").click()
    expect(bubbles).to_have_text([asked, "And the score?"])
    expect(page.locator(".step-output", has_text="The first version")).to_be_visible()
    # Opening the admin page and the review page: two rows in the log.
    assert review_logs(server).count(("rita", "alice", "Euro 2024")) == 2
    page.context.close()


def test_a_shared_link_shows_the_chat_to_teammates_until_it_is_revoked(browser, server):
    owner = open_as(browser, server, "alice")
    owner.goto(f"/c/{server.chat}/")
    expect(owner.locator("body")).to_have_attribute("data-connection", "online")
    owner.get_by_role("button", name="Share").click()
    owner.get_by_role("button", name="Create link").click()
    link = owner.get_by_role("textbox", name="Link to this chat")
    expect(link).to_have_value(re.compile(rf"^{re.escape(server.url)}/shared/[\w-]{{43}}/$"))
    url = link.input_value()
    expect(owner.locator("#share-button")).to_contain_text("Shared")

    teammate = open_as(browser, server, "bob")
    teammate.goto(url)
    expect(teammate.get_by_role("note")).to_contain_text("Shared by alice")
    assert_rendered_safely(teammate)
    assert_files_shown(teammate, r"^/shared/[\w-]{43}/files/[0-9a-f-]{36}/$")

    stranger = open_as(browser, server, None)
    response = stranger.goto(url)
    assert "/accounts/login/" in stranger.url
    assert "Euro 2024" not in response.text() and "Euro 2024" not in stranger.content()

    owner.get_by_role("button", name="Revoke link").click()
    expect(owner.get_by_role("button", name="Create link")).to_be_visible()
    expect(owner.locator("#share-button")).not_to_contain_text("Shared")
    assert teammate.goto(url).status == 404
    assert "Euro 2024" not in teammate.content()
    assert review_logs(server).count(("bob", "alice", "Euro 2024")) == 0
    for page in (owner, teammate, stranger):
        page.context.close()
