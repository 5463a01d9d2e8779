"""Search, export and import in a real browser: what a new user would try."""

import json
import re
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.test_chat import UUID, new_chat, reply, say, wait_finished


def test_a_word_of_a_reply_finds_its_chat_and_only_for_its_owner(alice_page, bob_page, upstream,
                                                                site):
    page = alice_page
    upstream.configure(delta_interval=0.01, deltas=12)  # the reply is lorem ipsum…
    conversation_id = new_chat(page)
    say(page, "say something latin")
    wait_finished(site, conversation_id)
    expect(reply(page)).to_contain_text("lorem")
    page.get_by_label("Search chats").fill("lore")  # typed, not finished: a prefix
    result = page.locator(f'.conv[data-id="{conversation_id}"]')
    expect(result.locator(".conv-snippet mark").first).to_have_text(re.compile("lorem", re.I))
    # Other tests' chats on this shared site may hold lorem too: this one goes away when
    # its message's word is excluded, and both words together find only it.
    page.get_by_label("Search chats").fill("lorem -latin")
    expect(result).to_have_count(0)
    page.get_by_label("Search chats").fill("lorem latin")
    expect(page.locator("#conversation-list .conv")).to_have_count(1)
    expect(result).to_have_count(1)

    bob_page.goto("/")
    bob_page.get_by_label("Search chats").fill("lorem latin")
    expect(bob_page.locator("#conversation-list")).to_contain_text("No chats match")


def test_a_chat_exports_and_imports_back_as_a_new_chat(alice_page, site):
    page = alice_page
    conversation_id = new_chat(page)  # started from the new-chat page
    say(page, "remember the quetzal")
    wait_finished(site, conversation_id)
    expect(reply(page)).to_contain_text("Echo: remember the quetzal")

    page.get_by_label("Export this chat").click()
    with page.expect_download() as markdown:
        page.get_by_role("link", name="Export as Markdown").click()
    text = Path(markdown.value.path()).read_text(encoding="utf-8")
    assert "## You\n\nremember the quetzal" in text and "Echo: remember the quetzal" in text

    page.get_by_label("Export this chat").click()
    with page.expect_download() as exported:
        page.get_by_role("link", name=re.compile("Export as JSON")).click()
    document = json.loads(Path(exported.value.path()).read_text(encoding="utf-8"))
    assert document["conversations"][0]["id"] == conversation_id

    page.get_by_text("Export or import").click()
    page.locator("#import-file").set_input_files(exported.value.path())
    page.wait_for_url(lambda url: re.search(rf"/c/{UUID}/$", url)
                      and conversation_id not in url)
    expect(page.locator(".msg-user").last).to_contain_text("remember the quetzal")
    expect(reply(page)).to_contain_text("Echo: remember the quetzal")
    assert len(site.query("SELECT id FROM conversations_conversation WHERE title = ?",
                          "remember the quetzal")) == 2


def test_a_file_that_is_not_an_export_is_refused_with_a_message(alice_page, tmp_path):
    page = alice_page
    page.goto("/")
    bogus = tmp_path / "notes.json"
    bogus.write_text("not json at all")
    page.get_by_text("Export or import").click()
    page.locator("#import-file").set_input_files(bogus)
    expect(page.locator(".toasts")).to_contain_text("not a chatsite export")
