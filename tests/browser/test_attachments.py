"""Attaching files in a real browser: button, drop, paste, remove, progress, refusals, and
how a sent message shows its files."""

import base64
import json
import re

from playwright.sync_api import expect

from tests import samples
from tests.browser.test_chat import new_chat

FILE_URL = re.compile(r"^/files/[0-9a-f-]{36}/$")


def payload(name: str, data: bytes, mime: str = "application/octet-stream") -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def chips(page):
    return page.locator("#composer-files .file-chip")


def wait_uploaded(page, count: int) -> None:
    expect(chips(page)).to_have_count(count)
    expect(page.locator("#composer-files .file-chip.uploading")).to_have_count(0)


def attach(page, *files: dict) -> None:
    page.set_input_files("#file-picker", files=list(files))


def sent_message(page):
    return page.locator(".turn:not(.pending) .msg-user").last


def stored_attachments(site, *names: str) -> list[tuple]:
    """The stored files of these names (the site is shared: other tests store files too)."""
    marks = ", ".join("?" * len(names))
    return site.query("SELECT name, mime_type, kind FROM conversations_attachment "
                      f"WHERE name IN ({marks}) ORDER BY name", *names)


def dispatch_files(page, selector: str, event: str, files: list[tuple[str, bytes, str]]) -> None:
    """Fire a drop or paste event carrying files, as the browser does for a real one."""
    page.evaluate("""([selector, event, files]) => {
        const data = new DataTransfer();
        for (const [name, b64, type] of files) {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            data.items.add(new File([bytes], name, { type }));
        }
        const target = document.querySelector(selector);
        if (event === "paste") {
            target.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true,
                                                               cancelable: true }));
            return;
        }
        for (const type of ["dragenter", "dragover", "drop"]) {
            target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true,
                                                       cancelable: true }));
        }
    }""", [selector, event, [(n, base64.b64encode(d).decode(), t) for n, d, t in files]])


def test_files_attached_by_button_show_in_the_sent_message(alice_page, site):
    page = alice_page
    new_chat(page)
    attach(page, payload("cat.png", samples.png(), "image/png"),
           payload("purr.wav", samples.wav(), "audio/wav"),
           payload("paper.pdf", samples.pdf(), "application/pdf"))
    wait_uploaded(page, 3)
    thumbnail = chips(page).nth(0).locator("img.chip-thumb")
    expect(thumbnail).to_have_js_property("naturalWidth", 2)  # shown before it is sent
    expect(chips(page).nth(2)).to_contain_text("paper.pdf")
    page.get_by_role("textbox", name="Message").fill("What are these?")
    page.get_by_role("button", name="Send").click()

    message = sent_message(page)
    expect(message).to_contain_text("What are these?")
    image = message.locator("figure.attachment img")
    expect(image).to_have_attribute("src", FILE_URL)
    expect(image).to_have_js_property("naturalWidth", 2)  # it loaded: the file is served
    expect(image.locator("xpath=..")).to_have_attribute("target", "_blank")  # full size
    expect(message.locator("audio")).to_have_attribute("src", FILE_URL)
    document = message.locator(".doc-chip")
    expect(document).to_contain_text("paper.pdf")
    expect(document.get_by_role("link", name="Download")).to_have_attribute(
        "href", re.compile(r"^/files/[0-9a-f-]{36}/\?download=1$"))
    expect(chips(page)).to_have_count(0)  # the composer is empty again
    assert stored_attachments(site, "cat.png", "paper.pdf", "purr.wav") == [
        ("cat.png", "image/png", "image"), ("paper.pdf", "application/pdf", "document"),
        ("purr.wav", "audio/wav", "audio")]


def test_dropped_and_pasted_files_are_attached_and_removable(alice_page):
    page = alice_page
    new_chat(page)
    dispatch_files(page, "#composer", "drop", [("dropped.png", samples.png(rgb=b"\0\0\xff"),
                                                "image/png")])
    dispatch_files(page, "#composer-input", "paste", [("pasted.png",
                                                       samples.png(rgb=b"\0\xff\0"), "image/png")])
    wait_uploaded(page, 2)
    expect(chips(page).nth(0)).to_contain_text("dropped.png")
    expect(chips(page).nth(1)).to_contain_text("pasted.png")

    page.get_by_role("button", name="Remove dropped.png").click()
    expect(chips(page)).to_have_count(1)
    send = page.get_by_role("button", name="Send")
    expect(send).to_be_enabled()  # a file alone is a message
    send.click()
    message = sent_message(page)
    expect(message.locator("figure.attachment img")).to_have_count(1)
    expect(message.locator("img")).to_have_attribute("alt", "pasted.png")


def test_a_refused_file_says_why_and_keeps_what_was_typed(alice_page):
    page = alice_page
    new_chat(page)
    box = page.get_by_role("textbox", name="Message")
    box.fill("Please look at my cat")
    attach(page, payload("cat.png", samples.ELF, "image/png"))

    chip = chips(page).first
    expect(chip).to_have_class(re.compile(r"\brefused\b"))
    expect(chip).to_contain_text("This file is a Linux program (ELF executable)")
    expect(box).to_have_value("Please look at my cat")
    send = page.get_by_role("button", name="Send")
    expect(send).to_be_disabled()
    expect(page.locator("#composer-hint")).to_contain_text("Remove the refused file")
    page.get_by_role("button", name="Remove cat.png").click()
    expect(send).to_be_enabled()


def test_a_large_upload_shows_its_progress(alice_page):
    page = alice_page
    new_chat(page)
    cdp = page.context.new_cdp_session(page)  # a slow uplink: 1 MiB/s
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20,
                                                  "downloadThroughput": -1,
                                                  "uploadThroughput": 1024 * 1024})
    page.evaluate("""() => {
        window.progressSeen = [];
        new MutationObserver(() => {
            for (const s of document.querySelectorAll("#composer-files .chip-status")) {
                window.progressSeen.push(s.textContent);
            }
        }).observe(document.getElementById("composer-files"),
                   { subtree: true, childList: true, characterData: true });
    }""")
    attach(page, payload("film.mp4", samples.ftyp(b"isom") + bytes(3 * 1024 * 1024)))
    expect(page.get_by_role("button", name="Send")).to_be_disabled()  # waits for the upload
    wait_uploaded(page, 1)
    seen = page.evaluate("window.progressSeen")
    assert any(re.fullmatch(r"Uploading… ([1-9][0-9]?)%", text) for text in seen), seen
    page.get_by_role("button", name="Send").click()
    expect(sent_message(page).locator("video")).to_have_attribute("src", FILE_URL)


def test_the_offline_model_says_it_cannot_see_files(alice_page):
    page = alice_page
    new_chat(page, model="local")
    expect(page.locator("#composer-files-note")).to_contain_text(
        "The offline model cannot see files")
    expect(page.get_by_role("button", name="Attach files")).to_be_hidden()
    dispatch_files(page, "#composer", "drop", [("cat.png", samples.png(), "image/png")])
    expect(chips(page)).to_have_count(0)  # not taken


def test_an_attached_image_reaches_gemini_inline_and_a_regenerate_sends_it_again(
        alice_page, site, upstream):
    """The whole way: composer upload, send, and the request the fake Gemini received."""
    from tests.browser.test_chat import creates, reply, wait_finished

    page = alice_page
    conversation_id = new_chat(page)
    attach(page, payload("cat.png", samples.png(), "image/png"))
    wait_uploaded(page, 1)
    page.get_by_role("textbox", name="Message").fill("What is this?")
    before = len(creates(upstream))
    page.get_by_role("button", name="Send").click()
    expect(reply(page)).to_contain_text("Echo", timeout=30_000)
    wait_finished(site, conversation_id)
    page.get_by_role("button", name="Regenerate").click()
    wait_finished(site, conversation_id, count=2)

    sent = creates(upstream)[before:]
    assert len(sent) == 2
    expected = {"type": "image", "mime_type": "image/png",
                "data": base64.b64encode(samples.png()).decode()}
    for body in sent:
        [user_input] = [item for item in body["input"] if item.get("type") == "user_input"] or [
            {"content": body["input"]}]
        blocks = user_input["content"]
        assert expected in blocks and {"type": "text", "text": "What is this?"} in blocks
        assert "attachment" not in json.dumps(body)
