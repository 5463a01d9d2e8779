"""The branch on screen in a real browser: a long branch opens with its newest turns and
loads the rest on scrolling up; switching versions keeps the switcher where it was, and a
reload (or another tab) opens the version being read."""

import pytest
from playwright.sync_api import expect

from tests.daphne import SIGNED_IN_ALICE, daphne

TURNS = 40
PAGE = 10
SETUP = SIGNED_IN_ALICE + f"""
from conversations.models import Turn
def turn(name, parent):
    return Turn.objects.create(
        conversation=chat, client_id=name, parent=parent, status="completed", seq=1,
        input=[{{"type": "text", "text": name}}],
        steps=[{{"type": "model_output", "content": [{{"type": "text",
                 "text": "The reply to " + name + ".\\n\\n" + "A line of text. " * 40}}]}}])
chat = services.conversation_create(owner=user, model="local", title="Long")
main, parent = [], None
for n in range({TURNS}):
    parent = turn(f"m{{n}}", parent)
    main.append(parent)
alt = turn("alt35", main[34])          # a second version of m35 ...
turn("alt36", alt)                     # ... with a turn below it
chat.branch_leaf = main[-1]            # the main branch was on screen
chat.save()
print(chat.pk)
"""


@pytest.fixture
def server(tmp_path):
    with daphne(tmp_path, SETUP, TURNS_PAGE=str(PAGE)) as server:
        yield server


def open_chat(browser, server):
    session, chat = server.printed[-2:]
    url = f"http://127.0.0.1:{server.port}"
    context = browser.new_context(base_url=url, viewport={"width": 1000, "height": 700})
    context.add_cookies([{"name": "sessionid", "value": session, "url": url}])
    page = context.new_page()
    page.goto(f"/c/{chat}/")
    expect(page.locator("body")).to_have_attribute("data-connection", "online")
    return page


def questions(page) -> list[str]:
    return [t.strip() for t in page.locator(".turn .msg-user .bubble").all_inner_texts()]


def test_a_long_branch_opens_with_its_newest_turns_and_loads_the_rest_upwards(browser, server):
    page = open_chat(browser, server)
    expect(page.locator(".msg-reply")).to_have_count(PAGE)
    assert questions(page)[-1] == f"m{TURNS - 1}"
    scroller = page.locator("#messages")
    scroller.evaluate("el => el.scrollTop = 0")  # up to the top: the page above comes
    first = page.locator(".turn", has_text="The reply to m30.")
    before = first.bounding_box()["y"]
    expect(page.locator(".msg-reply")).to_have_count(2 * PAGE)
    # The turns that were on screen stay where they were: the new ones go above them.
    assert abs(first.bounding_box()["y"] - before) < 4
    assert scroller.evaluate("el => el.scrollTop") > 1000

    for count in range(3 * PAGE, TURNS + 1, PAGE):  # a page each time the top is reached
        scroller.evaluate("el => el.scrollTop = 0")
        expect(page.locator(".msg-reply")).to_have_count(count)
    assert questions(page) == [f"m{n}" for n in range(TURNS)]
    expect(page.get_by_role("button", name="Show earlier messages")).to_have_count(0)
    page.context.close()


def test_switching_versions_keeps_the_place_and_is_remembered(browser, server):
    page = open_chat(browser, server)
    turn = page.locator(".turn", has_text="The reply to m35.")
    turn.scroll_into_view_if_needed()
    page.locator("#messages").evaluate(
        "(el, y) => el.scrollTop += y", turn.bounding_box()["y"] - 200)  # m35 near the top
    switcher = turn.locator(".branch-pos")
    expect(switcher).to_have_text("1/2")
    top = switcher.bounding_box()["y"]

    turn.get_by_role("button", name="Next version").click()

    switched = page.locator(".turn", has_text="The reply to alt35.")
    expect(switched.locator(".branch-pos")).to_have_text("2/2")
    expect(page.locator(".msg-reply").last).to_contain_text("The reply to alt36.")
    assert abs(switched.locator(".branch-pos").bounding_box()["y"] - top) < 4  # did not jump

    page.reload()  # the server remembers the version being read
    expect(page.locator(".msg-reply").last).to_contain_text("The reply to alt36.")
    other = open_chat(browser, server)  # and so does another tab
    expect(other.locator(".msg-reply").last).to_contain_text("The reply to alt36.")

    back = other.locator(".turn", has_text="The reply to alt35.")
    back.get_by_role("button", name="Previous version").click()
    expect(other.locator(".msg-reply").last).to_contain_text(f"The reply to m{TURNS - 1}.")
    expect(other.locator(".turn", has_text="The reply to m35.").locator(".branch-pos")
           ).to_have_text("1/2")
    other.context.close()
    page.context.close()
