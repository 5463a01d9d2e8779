"""A generated image in the browser: shown as it arrives, full size on click, downloadable;
its owner sees the file and anyone else gets 404."""

import base64
import json
import re
from pathlib import Path

from playwright.sync_api import expect

from devtools.fake_upstream.build_fixtures import PNG_B64
from tests.browser.test_chat import new_chat, reply, say, wait_finished

PNG = base64.b64decode(PNG_B64)
IMAGE_MODEL = "gemini-3.1-flash-image"


def loaded(img) -> int:
    """The image's natural width once the browser has decoded it (0 before)."""
    return img.evaluate("i => i.complete ? i.naturalWidth : 0")


def generate(page, upstream, site) -> tuple[str, dict]:
    """Ask for the image_output transcript; the conversation id and the stored step."""
    upstream.configure(delta_interval=1.5)  # a pause after the image, before the last words
    upstream.script("image_output")
    conversation_id = new_chat(page, IMAGE_MODEL)
    say(page, "draw a sunset")
    # Shown as it arrives: while the reply is still being written.
    expect(page.locator(".turn.running .msg-reply figure.media img")).to_be_visible()
    [(_, status, steps)] = wait_finished(site, conversation_id)
    assert status == "completed"
    [step] = json.loads(steps)
    return conversation_id, step


def test_a_generated_image_shows_opens_full_size_and_downloads(alice_page, upstream, site):
    page = alice_page
    _, step = generate(page, upstream, site)
    file = step["content"][1]["attachment"]
    assert "data" not in step["content"][1]

    img = reply(page).locator("figure.media img")
    expect(img).to_have_attribute("src", re.compile(rf"/files/{file['id']}/$"))
    page.wait_for_function("i => i.complete && i.naturalWidth === 8", arg=img.element_handle())
    expect(reply(page)).to_contain_text("Enjoy! 🎨")
    expect(reply(page).locator("figcaption")).to_contain_text("image-1.png")

    img.click()
    lightbox = page.locator("dialog.lightbox")
    expect(lightbox).to_be_visible()
    assert loaded(lightbox.locator("img")) == 8
    with page.context.expect_page() as opened:
        lightbox.get_by_role("link", name="Open in new tab").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url.endswith(file["url"])
    assert tab.evaluate("document.contentType") == "image/png"
    tab.close()
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()

    with page.expect_download() as download:
        reply(page).get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "image-1.png"
    assert Path(download.value.path()).read_bytes() == PNG


def test_only_the_owner_gets_the_file(alice_page, bob_page, upstream, site):
    _, step = generate(alice_page, upstream, site)
    url = step["content"][1]["attachment"]["url"]
    mine = alice_page.request.get(url)
    assert mine.status == 200 and mine.body() == PNG
    assert bob_page.request.get(url).status == 404
    assert bob_page.request.get(url + "?download=1").status == 404


def test_a_turn_stored_with_inline_data_still_shows_its_image(alice_page, upstream, site):
    page = alice_page
    conversation_id, step = generate(page, upstream, site)
    block = step["content"][1]
    block.pop("attachment")
    block["data"] = PNG_B64  # as rows written before images were files hold it
    site.query("UPDATE conversations_turn SET steps = ? WHERE conversation_id = ?",
               json.dumps([step]), conversation_id.replace("-", ""))
    page.reload()
    img = reply(page).locator("figure.media img")
    expect(img).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    page.wait_for_function("i => i.complete && i.naturalWidth === 8", arg=img.element_handle())
