"""A reply whose message has a large file: the page shows the upload and Google's processing."""

import hashlib
import json
import uuid

from playwright.sync_api import expect

from tests.browser.test_chat import new_chat, reply, say, wait_finished


def attach_to_first_turn(site, conversation_id: str, data: bytes, name: str) -> None:
    """Give the conversation's first message a stored file, as the composer would have
    (the file under MEDIA_ROOT, its row, a block in the turn's input)."""
    [(owner,)] = site.query("SELECT id FROM auth_user WHERE username = 'alice'")
    sha = hashlib.sha256(data).hexdigest()
    relative = f"attachments/{owner}/{sha[:2]}/{sha}"
    path = site.database.parent / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    attachment = uuid.uuid4()
    site.query("INSERT INTO conversations_attachment (id, owner_id, sha256, file, mime_type, "
               "kind, name, size, source, remote_name, remote_uri, remote_expires, created) "
               "VALUES (?, ?, ?, ?, 'video/mp4', 'video', ?, ?, 'upload', '', '', NULL, "
               "'2026-01-01 00:00:00')", attachment.hex, owner, sha, relative, name, len(data))
    block = {"type": "video", "mime_type": "video/mp4", "attachment": {
        "id": str(attachment), "url": f"/files/{attachment}/", "name": name, "size": len(data)}}
    site.query("UPDATE conversations_turn SET input = ? WHERE conversation_id = ?",
               json.dumps([{"type": "text", "text": "hi"}, block]),
               conversation_id.replace("-", ""))


def test_the_upload_and_the_processing_show_until_the_reply_starts(alice_page, upstream, site):
    page = alice_page
    conversation_id = new_chat(page)
    say(page, "hi")
    wait_finished(site, conversation_id)
    # Over the 16 MiB inline limit: it goes through the Files API.
    attach_to_first_turn(site, conversation_id, b"v" * (17 * 1024 * 1024), "big.mp4")
    upstream.configure(file_processing_seconds=3)

    page.get_by_role("button", name="Regenerate").click()
    waiting = reply(page).get_by_role("status")
    expect(waiting).to_have_text("Waiting for Google to process big.mp4…", timeout=30_000)
    expect(reply(page)).to_contain_text("Echo: hi", timeout=30_000)
    expect(waiting).to_have_count(0)
    [upload] = [r for r in upstream.find_requests("POST", "/upload/")
                if r.headers.get("x-goog-upload-command") == "start"]
    assert upload.json["file"]["display_name"] == "big.mp4"
