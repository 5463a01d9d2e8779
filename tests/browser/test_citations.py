"""Citations in the browser, for every recorded transcript that has them: each cited span is
marked with its sources (overlapping, nested, across markup, in CJK, Arabic and emoji), each
ends in a link to its source, and the sources are listed once each."""

import json

import pytest
from playwright.sync_api import expect

from devtools.fake_upstream.build_fixtures import CITATION_SENTENCES
from tests.browser.test_chat import new_chat, reply, say, wait_finished

CITED = ["citations_multi", "search_grounding_ar", "seed_google_search", "unknown_types"]


def cited_block(steps_json: str) -> dict:
    [block] = [b for s in json.loads(steps_json) if s["type"] == "model_output"
               for b in s["content"] if b.get("annotations")]
    return block


def url_citations(block: dict) -> list[dict]:
    return [a for a in block["annotations"] if a["type"] == "url_citation"]


def sources(block: dict) -> list[tuple[str, str]]:
    """(url, title) of each cited source, in order of first citation."""
    seen = {}
    for a in url_citations(block):
        seen.setdefault(a["url"], a["title"])
    return list(seen.items())


def plain(markdown: str) -> str:
    return markdown.replace("**", "")  # the only markup the cited fixtures use


def cited_text(block: dict, url: str) -> str:
    """What the spans citing `url` cover, in reading order: the union of its byte ranges."""
    raw = block["text"].encode()
    covered = sorted({i for a in url_citations(block) if a["url"] == url
                      for i in range(a["start_index"], a["end_index"])})
    runs, run = [], []
    for i in covered:
        if run and i != run[-1] + 1:
            runs.append(run)
            run = []
        run.append(i)
    runs.append(run)
    return "".join(plain(raw[r[0]:r[-1] + 1].decode()) for r in runs if r)


def with_links(block: dict) -> str:
    """The block's text as shown: a "[n]" after each cited span, once per source and place."""
    raw = block["text"].encode()
    numbers = {url: n for n, (url, _) in enumerate(sources(block), 1)}
    ends: dict[int, list[int]] = {}
    for a in url_citations(block):
        links = ends.setdefault(a["end_index"], [])
        if numbers[a["url"]] not in links:
            links.append(numbers[a["url"]])
    out, last = [], 0
    for end in sorted(ends):
        out.append(raw[last:end].decode())
        out += [f"[{n}]" for n in ends[end]]
        last = end
    out.append(raw[last:].decode())
    return plain("".join(out))


SHOWN = """md => ({
  text: md.textContent,
  spans: [...md.querySelectorAll(".cited")].map(s => [s.dataset.sources, s.textContent]),
})"""


@pytest.mark.parametrize("name", CITED)
def test_the_cited_spans_are_linked_and_the_sources_listed(alice_page, upstream, site, name):
    page = alice_page
    upstream.script(name)
    conversation_id = new_chat(page)
    say(page, "cite your sources")
    [(_, status, steps)] = wait_finished(site, conversation_id)
    assert status == "completed"
    block = cited_block(steps)
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible()

    listed = reply(page).locator(".sources li a")
    expect(listed).to_have_count(len(sources(block)))
    assert [(a.get_attribute("href"), a.inner_text()) for a in listed.all()] == sources(block)

    md = reply(page).locator(".step-output .md")
    shown = md.evaluate(SHOWN)
    assert shown["text"].strip() == with_links(block)
    for n, (url, _) in enumerate(sources(block), 1):
        covered = "".join(text for numbers, text in shown["spans"]
                          if str(n) in numbers.split())
        assert covered == cited_text(block, url), url
        links = md.locator(f'sup.cite a[href="{url}"]')
        expect(links.first).to_have_text(f"[{n}]")


def test_overlapping_spans_carry_every_source_that_covers_them(alice_page, upstream, site):
    page = alice_page
    upstream.script("citations_multi")
    conversation_id = new_chat(page)
    say(page, "capitals")
    wait_finished(site, conversation_id)
    md = reply(page).locator(".step-output .md")
    expect(md.locator(".cited").first).to_be_visible()
    # Each piece of text -> the sources of its span (the first span with that text).
    spans = {text: numbers for numbers, text in reversed(md.evaluate(SHOWN)["spans"])}
    # Sources: 1 Tokyo, 2 Beijing, 3 Cairo, 4 the cities overview.
    assert spans["東京"] == "1"  # bold, inside its span: the span crosses the markup
    expect(md.locator("strong > .cited")).to_have_text("東京")
    assert spans["人口约2100万 👩\u200d💻"] == "2 4"  # Beijing twice (nested) and the overview
    assert spans[CITATION_SENTENCES[2]] == "3 4"
    assert spans["largest cities"] == "1 4"


LIVE = [  # text keeps coming after the first citation arrives
    {"event_type": "interaction.created",
     "interaction": {"id": "v1_live", "status": "in_progress", "object": "interaction"}},
    {"event_type": "step.start", "index": 0, "step": {"type": "model_output"}},
    {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": "東京は首都。"}},
    {"event_type": "step.delta", "index": 0, "delta": {"type": "text_annotation_delta",
     "annotations": [{"type": "url_citation", "url": "https://example.org/tokyo",
                      "title": "Tokyo", "start_index": 0, "end_index": 18}]}},
    {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": " Later words."}},
    {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": " The end."}},
    {"event_type": "step.stop", "index": 0},
    {"event_type": "interaction.completed",
     "interaction": {"id": "v1_live", "status": "completed"}},
]


def test_text_after_a_citation_shows_while_it_streams(alice_page, upstream):
    page = alice_page
    upstream.configure(delta_interval=2.0)
    upstream.script(LIVE)
    new_chat(page)
    say(page, "stream")
    live = page.locator(".turn.running .msg-reply")
    expect(live.locator("sup.cite a")).to_have_text("[1]")
    expect(live).to_contain_text("Later words.")  # before the reply ends
    expect(reply(page)).to_contain_text("The end.")


def test_a_span_that_starts_a_list_item_keeps_the_list(alice_page, upstream, site):
    text = "- Tokyo is the capital of Japan.\n- القاهرة عاصمة مصر."
    second = text.encode().index("- القاهرة".encode())
    upstream.script({"id": "v1_list", "status": "completed", "steps": [
        {"type": "model_output", "content": [{"type": "text", "text": text, "annotations": [
            {"type": "url_citation", "url": "https://example.org/a", "title": "A",
             "start_index": 0, "end_index": second - 1},
            {"type": "url_citation", "url": "https://example.org/b", "title": "B",
             "start_index": second, "end_index": len(text.encode())}]}]}]})
    page = alice_page
    conversation_id = new_chat(page)
    say(page, "list")
    wait_finished(site, conversation_id)
    items = reply(page).locator(".step-output .md ul > li")
    expect(items).to_have_count(2)
    expect(items.nth(0).locator(".cited")).to_have_text("Tokyo is the capital of Japan.")
    expect(items.nth(1).locator(".cited")).to_have_text("القاهرة عاصمة مصر.")
    expect(items.nth(1).locator("sup.cite a")).to_have_text("[2]")
