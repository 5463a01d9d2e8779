"""Google's search suggestions: in a sandboxed frame (no scripts, not our origin) sized to
its content: a tall widget is not clipped, a short one leaves no gap, and the frame follows
a change of width."""

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.test_chat import new_chat, reply, say, wait_finished

# Shaped like Google's search entry point: its own <style>, a logo, chips.
STYLE = ("<style>.container{display:flex;flex-wrap:wrap;align-items:center;gap:6px;"
         "padding:8px 12px;border-radius:8px;font-family:Roboto,sans-serif;font-size:14px;"
         "line-height:20px;background:#fafafa}.chip{display:inline-block;padding:5px 16px;"
         "border:1px solid #d2d2d2;border-radius:16px;color:#5e5e5e;text-decoration:none}"
         ".note{flex-basis:100%;margin:6px 0 0}@media (prefers-color-scheme: dark)"
         "{.container{background:#1f1f1f}}</style>")
LOGO = ('<svg width="18" height="18" viewBox="0 0 18 18" xmlns="http://www.w3.org/2000/svg">'
        '<circle cx="9" cy="9" r="8" fill="#4285f4"/></svg>')


def chips(queries) -> str:
    return "".join(f'<a class="chip" href="https://www.google.com/search?q={q}">{q}</a>'
                   for q in queries)


SHORT = f'{STYLE}<div class="container">{LOGO}{chips(["euro 2024"])}</div>'
TALL = (f'{STYLE}<div class="container">{LOGO}'
        + chips(f"capital city number {n} population" for n in range(24))
        + '<p class="note">Results from Google Search, in the language of your question: '
        + "القاهرة · 東京 · 北京 🔎 " * 6 + "</p></div>")


def script(upstream, widget: str) -> None:
    upstream.script([
        {"event_type": "interaction.created",
         "interaction": {"id": "v1_widget", "status": "in_progress", "object": "interaction"}},
        {"event_type": "step.start", "index": 0, "step": {
            "type": "google_search_result", "call_id": "s1",
            "result": [{"search_suggestions": widget}]}},
        {"event_type": "step.stop", "index": 0},
        {"event_type": "step.start", "index": 1, "step": {"type": "model_output", "content": [
            {"type": "text", "text": "Grounded."}]}},
        {"event_type": "step.stop", "index": 1},
        {"event_type": "interaction.completed",
         "interaction": {"id": "v1_widget", "status": "completed"}},
    ])


# Inside the frame (Playwright reaches it though our page cannot): where its content ends.
CONTENT_BOTTOM = """() => {
  const body = document.body;
  return body.getBoundingClientRect().bottom + parseFloat(getComputedStyle(body).marginBottom);
}"""


def fit(page) -> tuple[float, float] | None:
    """(the frame's height, the height its content needs), once the frame has loaded; None
    when the frame went away meanwhile (the reply drawn again, from its last frame)."""
    frame_el = reply(page).locator(".search-suggestions iframe")
    expect(frame_el).to_be_visible()
    frame = frame_el.element_handle().content_frame()
    if frame is None:
        return None
    try:
        frame.wait_for_selector(".chip", state="attached")
        return frame_el.evaluate("f => f.clientHeight"), frame.evaluate(CONTENT_BOTTOM)
    except PlaywrightError as error:
        if "detached" in str(error):
            return None
        raise


def sized(page) -> tuple[float, float]:
    """Wait until the frame is within 2 px of what its content needs; both heights."""
    page.wait_for_function("""() => {
      const f = [...document.querySelectorAll('.search-suggestions iframe')].pop();
      return f && f.style.height;
    }""")
    height = needed = None
    for _ in range(50):
        measured = fit(page)
        if measured is not None:
            height, needed = measured
            if abs(height - needed) <= 2:
                break
        page.wait_for_timeout(100)
    assert height is not None, "the frame never stayed long enough to be measured"
    return height, needed


@pytest.mark.parametrize("widget", ["short", "tall"])
def test_the_frame_is_as_tall_as_the_widget(alice_page, upstream, site, widget):
    page = alice_page
    script(upstream, SHORT if widget == "short" else TALL)
    conversation_id = new_chat(page)
    say(page, "search")
    wait_finished(site, conversation_id)
    height, needed = sized(page)
    assert needed <= height + 1  # not clipped
    assert height - needed <= 2  # no gap
    if widget == "tall":
        assert needed > 150
    else:
        assert needed < 80


def test_the_frame_follows_a_change_of_width(alice_page, upstream, site):
    page = alice_page
    script(upstream, TALL)
    conversation_id = new_chat(page)
    say(page, "search")
    wait_finished(site, conversation_id)
    wide, _ = sized(page)
    page.set_viewport_size({"width": 560, "height": 800})
    page.wait_for_function(f"""() => document.querySelector(
      '.search-suggestions iframe').clientHeight > {wide} + 20""")
    narrow, needed = sized(page)
    assert narrow > wide and needed <= narrow + 1 and narrow - needed <= 2


HOSTILE = (SHORT + '<img src="/x" onerror="document.title=\'ran\'">'
           "<script>document.title='ran'</script>"
           "<style>:host, .container { pointer-events: auto !important; "
           "position: fixed !important; inset: 0 !important; z-index: 99999 !important; "
           "opacity: 1 !important; visibility: visible !important }</style>")


def test_the_widget_runs_nothing_and_covers_nothing(browser, upstream, site):
    # Not alice_page: the frame's own CSP refusing the widget's handler is logged, as it should.
    page = log_in(browser, site, "alice")
    script(upstream, HOSTILE)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    conversation_id = new_chat(page)
    try:
        say(page, "search")
        wait_finished(site, conversation_id)
        sized(page)
        frame = reply(page).locator(".search-suggestions iframe")
        assert frame.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
        assert "ran" not in page.title()
        assert not [url for url in requests if url.endswith("/x")]
        # The measuring copy takes no click meant for the page: what is there is ours.
        on_top = """selector => {
          const box = document.querySelector(selector).getBoundingClientRect();
          return document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2)
            .closest(selector) !== null;
        }"""
        assert page.evaluate(on_top, '[aria-label="Message"]')
        assert page.evaluate(on_top, ".msg-reply .step-output .md")
    finally:
        page.context.close()
        forget(site, conversation_id)  # other tests open the newest conversation first


def forget(site, conversation_id: str) -> None:
    key = conversation_id.replace("-", "")
    site.query("UPDATE conversations_conversation SET branch_leaf_id = NULL WHERE id = ?", key)
    site.query("DELETE FROM conversations_turn WHERE conversation_id = ?", key)
    site.query("DELETE FROM conversations_conversation WHERE id = ?", key)
