"""When the server ends or refuses a socket, the page says why."""

import re

from playwright.sync_api import expect

from tests.browser.test_chat import new_chat


def test_signing_out_in_another_tab_ends_this_tabs_socket(alice_page):
    page = alice_page
    new_chat(page)
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    other = page.context.new_page()  # same browser, same session cookie
    other.goto("/")

    other.get_by_role("button", name="Log out").click()

    expect(page.locator("#connection-status")).to_contain_text("You have been logged out",
                                                                timeout=10_000)
    other.close()


def test_too_many_tabs_is_said_and_retried_later(alice_page):
    page = alice_page
    new_chat(page)
    page.route_web_socket(re.compile(r"/ws/"), lambda ws: ws.close(code=4429))

    page.reload()

    banner = page.locator("#connection-status")
    expect(banner).to_contain_text("Too many tabs of this site are open for your account")
    expect(banner).to_contain_text(re.compile(r"Reconnecting in (1[0-9]|[6-9]) s"))
