"""A message over the user's limits is refused on the page: it says why, and what was
typed stays in the composer."""

import re
from contextlib import contextmanager

from playwright.sync_api import expect

from tests.browser.test_chat import new_chat, reply, say, wait_finished


@contextmanager
def policy_of(site, username: str, **limits):
    """An access policy for one user of the running site, for the length of a test (the
    site is shared by the whole session)."""
    columns = {"daily_tokens": None, "messages_per_hour": None, **limits}
    site.query("INSERT INTO conversations_accesspolicy (name, daily_tokens, messages_per_hour, "
               "allowed_models, allowed_tools) VALUES (?, ?, ?, '[]', '[]')",
               f"test {username}", columns["daily_tokens"], columns["messages_per_hour"])
    site.query("INSERT INTO conversations_accesspolicy_users (accesspolicy_id, user_id) "
               "SELECT p.id, u.id FROM conversations_accesspolicy p, auth_user u "
               "WHERE p.name = ? AND u.username = ?", f"test {username}", username)
    try:
        yield
    finally:
        site.query("DELETE FROM conversations_accesspolicy_users WHERE accesspolicy_id IN "
                   "(SELECT id FROM conversations_accesspolicy WHERE name = ?)",
                   f"test {username}")
        site.query("DELETE FROM conversations_accesspolicy WHERE name = ?", f"test {username}")


def tokens_used(site, username: str) -> int:
    """What the user's turns spent so far (the site is shared: earlier tests spent some)."""
    [(used,)] = site.query(
        "SELECT COALESCE(SUM(CAST(json_extract(t.usage, '$.total_tokens') AS INTEGER)), 0) "
        "FROM conversations_turn t JOIN conversations_conversation c ON t.conversation_id = c.id "
        "JOIN auth_user u ON c.owner_id = u.id WHERE u.username = ?", username)
    return used


def test_a_send_over_the_quota_is_explained_and_the_text_kept(alice_page, site):
    page = alice_page
    quota = tokens_used(site, "alice") + 3
    with policy_of(site, "alice", daily_tokens=quota):
        conversation_id = new_chat(page)
        say(page, "hello quota")  # under the quota: it goes, and its reply spends it
        expect(reply(page)).to_contain_text("Echo: hello quota")
        wait_finished(site, conversation_id)

        say(page, "this one is over the quota")

        expect(page.locator(".toast").last).to_have_text(re.compile(
            rf"You have used your {quota:,} tokens for today; the quota resets at midnight "
            r"\(in .+\)\."))
        box = page.get_by_role("textbox", name="Message")
        expect(box).to_have_value("this one is over the quota")
        expect(page.get_by_role("button", name="Send")).to_be_enabled()
        expect(page.locator(".msg-reply")).to_have_count(1)
    assert len(site.query("SELECT id FROM conversations_turn WHERE conversation_id = ?",
                          conversation_id.replace("-", ""))) == 1
