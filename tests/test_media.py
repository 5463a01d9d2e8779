"""Files reach Gemini inline or through the Files API: real turns, the real runner, the fake
upstream over loopback; request bodies checked against the official SDK's types."""

import asyncio
import base64
import hashlib
import json
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from google.genai._gaos.types import interactions as sdk

from conversations import runner, services
from conversations.models import Attachment, Turn
from tests.streaming import frames_until_done, replay, socket, text_of

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024


@pytest.fixture
def gemini(settings, fake_upstream, tmp_path):
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    settings.MEDIA_ROOT = tmp_path / "media"
    return fake_upstream


def attach(owner, data: bytes, name: str, mime: str, *, source="upload") -> Attachment:
    """An attachment as the upload endpoint (or a generated image) leaves it: a row and
    its file under MEDIA_ROOT."""
    sha = hashlib.sha256(data).hexdigest()
    kind = mime.split("/")[0] if mime.split("/")[0] in ("image", "audio", "video") else "document"
    attachment = Attachment(owner=owner, sha256=sha, mime_type=mime, kind=kind,
                            name=name, size=len(data), source=source)
    attachment.file.save(name, ContentFile(data), save=False)
    attachment.save()
    return attachment


def block(attachment: Attachment, **extra) -> dict:
    """The content block a turn's input (or a stored step) holds for a file."""
    return {"type": attachment.kind, "mime_type": attachment.mime_type, **extra,
            "attachment": {"id": str(attachment.pk), "url": f"/files/{attachment.pk}/",
                           "name": attachment.name, "size": attachment.size}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def start(chat, blocks: list[dict], *, parent=None) -> tuple[Turn, runner.TurnRun]:
    """Create a turn and start its run."""
    turn, _ = await asyncio.to_thread(
        services.turn_create, conversation=chat, parent=parent,
        client_id=f"c{await Turn.objects.acount()}", input=blocks)
    return turn, runner.start(turn)


async def run(chat, blocks: list[dict], *, parent=None) -> Turn:
    """Create a turn and run it to its end; the turn as stored."""
    turn, run_ = await start(chat, blocks, parent=parent)
    await run_.task
    return await Turn.objects.aget(pk=turn.pk)


async def new_chat(owner, **changes):
    chat = await asyncio.to_thread(services.conversation_create, owner=owner,
                                   model="gemini-3.5-flash")
    for name, value in changes.items():
        setattr(chat, name, value)
    await chat.asave()
    return chat


def creates(fake) -> list[dict]:
    """The create bodies the fake received, each checked against the SDK's request type."""
    bodies = [r.json for r in fake.find_requests("POST", r"/interactions$")]
    for body in bodies:
        sdk.CreateModelInteraction.model_validate(body)
        assert '"attachment"' not in json.dumps(body)  # our key never leaves the server
    return bodies


def uploads(fake) -> list:
    return [r for r in fake.find_requests("POST", "/upload/")
            if r.headers.get("x-goog-upload-command") == "start"]


def user_blocks(body: dict) -> list[dict]:
    return body["input"][-1]["content"]


TEXT = {"type": "text", "text": "What is in these?"}


async def test_files_go_inline_while_the_request_stays_under_the_limit(alice, gemini):
    photo = await asyncio.to_thread(attach, alice, b"\x89PNG" + b"p" * 996, "cat.png",
                                    "image/png")
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    turn = await run(await new_chat(alice), [TEXT, block(photo), block(clip)])

    assert turn.status == "completed"
    [body] = creates(gemini)
    assert user_blocks(body) == [
        TEXT, {"type": "image", "mime_type": "image/png", "data": b64(b"\x89PNG" + b"p" * 996)},
        {"type": "video", "mime_type": "video/mp4", "data": b64(b"v" * 5000)}]
    assert uploads(gemini) == []


async def test_past_the_limit_the_largest_file_goes_through_the_files_api(alice, gemini,
                                                                          settings):
    settings.INLINE_MEDIA_MAX_BYTES = 4000
    photo = await asyncio.to_thread(attach, alice, b"p" * 1000, "cat.png", "image/png")
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    turn = await run(await new_chat(alice), [TEXT, block(photo), block(clip)])

    assert turn.status == "completed"
    [body] = creates(gemini)
    [start] = uploads(gemini)
    assert start.json == {"file": {"mime_type": "video/mp4", "size_bytes": 5000,
                                   "display_name": "clip.mp4"}}
    [(file_id, file)] = gemini.files.items()
    assert user_blocks(body) == [
        TEXT, {"type": "image", "mime_type": "image/png", "data": b64(b"p" * 1000)},
        {"type": "video", "mime_type": "video/mp4", "uri": file["uri"]}]
    assert len(json.dumps(body, separators=(",", ":"))) <= 4000
    await clip.arefresh_from_db()
    assert (clip.remote_name, clip.remote_uri) == (file["name"], file["uri"])
    assert clip.remote_expires > timezone.now() + timedelta(hours=47)


@pytest.mark.parametrize("expires", [timedelta(hours=-1), timedelta(minutes=10)])
async def test_an_expired_upload_is_sent_again(alice, gemini, settings, expires):
    """Expired, or expiring before the reply could be done: a new upload, a new uri kept."""
    settings.INLINE_MEDIA_MAX_BYTES = 1000
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    old = "https://generativelanguage.googleapis.com/v1beta/files/old"
    await Attachment.objects.filter(pk=clip.pk).aupdate(
        remote_name="files/old", remote_uri=old, remote_expires=timezone.now() + expires)
    turn = await run(await new_chat(alice), [TEXT, block(clip)])

    assert turn.status == "completed"
    assert len(uploads(gemini)) == 1
    [file] = gemini.files.values()
    assert user_blocks(creates(gemini)[0])[1]["uri"] == file["uri"] != old
    await clip.arefresh_from_db()
    assert clip.remote_uri == file["uri"] and clip.remote_expires > timezone.now()


async def test_regenerate_and_an_edited_branch_reuse_the_upload(alice, gemini, settings):
    settings.INLINE_MEDIA_MAX_BYTES = 1000
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    chat = await new_chat(alice)
    first = await run(chat, [TEXT, block(clip)])
    again = await run(chat, first.input)  # regenerate: a sibling with the same input
    edited = await run(chat, [{"type": "text", "text": "And now?"}, block(clip)])

    assert [t.status for t in (first, again, edited)] == ["completed"] * 3
    assert len(uploads(gemini)) == 1
    [file] = gemini.files.values()
    assert [user_blocks(b)[1]["uri"] for b in creates(gemini)] == [file["uri"]] * 3


async def test_a_file_the_upstream_lost_is_uploaded_again_and_the_turn_goes_on(alice, gemini,
                                                                               settings):
    settings.INLINE_MEDIA_MAX_BYTES = 1000
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    chat = await new_chat(alice)
    first = await run(chat, [TEXT, block(clip)])
    [lost] = gemini.files.values()
    gemini.expire_file(lost["name"])  # gone upstream, though we thought it had hours left
    again = await run(chat, first.input)

    assert again.status == "completed"
    assert len(uploads(gemini)) == 2
    refused, retried = gemini.find_requests("POST", r"/interactions$")[1:]
    assert user_blocks(refused.json)[1]["uri"] == lost["uri"]
    [kept] = gemini.files.values()
    assert user_blocks(retried.json)[1]["uri"] == kept["uri"] != lost["uri"]
    await clip.arefresh_from_db()
    assert clip.remote_uri == kept["uri"]


async def test_stateless_replay_resends_files_and_generated_images_byte_exact(alice, gemini,
                                                                              settings):
    settings.INLINE_MEDIA_MAX_BYTES = 6000
    photo = await asyncio.to_thread(attach, alice, b"p" * 500, "cat.png", "image/png")
    clip = await asyncio.to_thread(attach, alice, b"v" * 6000, "clip.mp4", "video/mp4")
    drawn = bytes(range(256)) * 16
    generated = await asyncio.to_thread(attach, alice, drawn, "generated.png", "image/png",
                                        source="generated")
    chat = await new_chat(alice, stateful=False)
    first = await run(chat, [TEXT, block(photo), block(clip)])  # the clip is uploaded
    reply = [{"type": "thought", "signature": "c2lnbmVk"},
             {"type": "model_output", "x_future": {"kept": True}, "content": [
                 {"type": "text", "text": "Here is a drawing."},
                 block(generated, resolution="high")]}]
    await Turn.objects.filter(pk=first.pk).aupdate(steps=reply)
    await run(chat, [{"type": "text", "text": "Draw it again."}], parent=first)

    replayed = creates(gemini)[-1]
    assert replayed["store"] is False and "previous_interaction_id" not in replayed
    await clip.arefresh_from_db()
    await photo.arefresh_from_db()
    # Over the limit with everything inline: the clip goes by the uri it has, and the photo
    # is uploaded rather than the larger drawing, which is the model's own, sent as it came.
    assert replayed["input"] == [
        {"type": "user_input", "content": [
            TEXT, {"type": "image", "mime_type": "image/png", "uri": photo.remote_uri},
            {"type": "video", "mime_type": "video/mp4", "uri": clip.remote_uri}]},
        {"type": "thought", "signature": "c2lnbmVk"},
        {"type": "model_output", "x_future": {"kept": True}, "content": [
            {"type": "text", "text": "Here is a drawing."},
            {"type": "image", "mime_type": "image/png", "resolution": "high",
             "data": b64(drawn)}]},
        {"type": "user_input", "content": [{"type": "text", "text": "Draw it again."}]}]
    assert base64.b64decode(replayed["input"][2]["content"][1]["data"]) == drawn
    assert [u.json["file"]["display_name"] for u in uploads(gemini)] == ["clip.mp4", "cat.png"]
    stored = await Turn.objects.aget(pk=first.pk)
    assert stored.steps == reply  # what is stored keeps referring to the file


async def test_a_file_of_another_user_is_not_sent(alice, bob, gemini):
    theirs = await asyncio.to_thread(attach, bob, b"secret", "bob.pdf", "application/pdf")
    turn = await run(await new_chat(alice), [TEXT, block(theirs)])

    assert turn.status == "failed"
    assert turn.error["code"] == "attachment_missing" and "bob.pdf" in turn.error["message"]
    assert turn.error["retryable"] is False
    assert creates(gemini) == [] and uploads(gemini) == []


async def test_an_upload_failure_fails_the_turn_and_a_retry_works(alice, gemini, settings):
    settings.INLINE_MEDIA_MAX_BYTES = 1000
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    chat = await new_chat(alice)
    gemini.fault(503, path="/upload/", times=None)
    failed = await run(chat, [TEXT, block(clip)])

    assert failed.status == "failed"
    assert failed.error["code"] == "upload_failed" and failed.error["retryable"] is True
    assert "clip.mp4" in failed.error["message"] and "503" in failed.error["message"]
    assert creates(gemini) == []
    gemini.reset()
    retried = await run(chat, failed.input)  # Retry: a regenerate of the failed turn
    assert retried.status == "completed" and len(uploads(gemini)) == 1


async def test_a_file_google_cannot_process_fails_the_turn(alice, gemini, settings):
    settings.INLINE_MEDIA_MAX_BYTES = 1000
    gemini.configure(file_processing_gets=1, file_processing_outcome="FAILED")
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    turn = await run(await new_chat(alice), [TEXT, block(clip)])

    assert turn.status == "failed" and turn.error["code"] == "file_failed"
    assert turn.error["message"].startswith("Google could not process “clip.mp4”")
    assert turn.error["retryable"] is False
    await clip.arefresh_from_db()
    assert clip.remote_uri == ""  # a failed copy is not remembered


async def test_the_page_is_told_of_the_upload_and_the_processing(alice, gemini, settings):
    """Over a real websocket: the percentages, the wait for ACTIVE, then the reply."""
    settings.INLINE_MEDIA_MAX_BYTES = 1000
    gemini.configure(file_processing_gets=1)  # one poll still sees PROCESSING
    clip = await asyncio.to_thread(attach, alice, b"v" * (16 * MIB + 1), "clip.mp4",
                                   "video/mp4")
    chat = await new_chat(alice)
    async with socket(alice, chat) as ws:
        turn, run_ = await start(chat, [TEXT, block(clip)])
        frames = await frames_until_done(ws)
        await run_.task

    updates = [f for f in frames if f["type"] == "turn.update"]
    assert [f["detail"] for f in updates if "detail" in f] == [
        "Uploading clip.mp4 (0%)…", "Uploading clip.mp4 (49%)…", "Uploading clip.mp4 (99%)…",
        "Uploading clip.mp4 (100%)…", "Waiting for Google to process clip.mp4…", None]
    cleared = next(i for i, f in enumerate(updates) if "detail" in f and f["detail"] is None)
    assert all(not f["ops"] for f in updates[:cleared])  # nothing streamed before the files
    assert updates[-1]["status"] == "completed"
    steps, _ = replay(frames, str(turn.pk))
    assert text_of(steps) == "Echo: What is in these?"
    assert len(gemini.find_requests("GET", "/files/")) == 2


async def test_the_offline_model_gets_the_blocks_without_the_files(alice, gemini):
    from conversations import media

    photo = await asyncio.to_thread(attach, alice, b"p" * 100, "cat.png", "image/png")
    body = {"model": "local", "input": [{"type": "user_input", "content": [TEXT, block(photo)]}]}
    resolved = await media.resolve(body, owner_id=alice.pk, client=None, progress=print)

    assert resolved.body["input"][0]["content"] == [TEXT, {"type": "image",
                                                           "mime_type": "image/png"}]
    assert "attachment" in body["input"][0]["content"][1]  # the caller's body is untouched


async def test_a_stop_while_google_processes_the_file_cancels_the_turn(alice, gemini, settings):
    settings.INLINE_MEDIA_MAX_BYTES = 1000
    gemini.configure(file_processing_seconds=60)
    clip = await asyncio.to_thread(attach, alice, b"v" * 5000, "clip.mp4", "video/mp4")
    chat = await new_chat(alice)
    async with socket(alice, chat) as ws:
        turn, run_ = await start(chat, [TEXT, block(clip)])
        while (await ws.receive_json_from(timeout=10)).get("detail") != (
                "Waiting for Google to process clip.mp4…"):
            pass
        await runner.stop(chat.pk, str(turn.pk))
        last = (await frames_until_done(ws))[-1]
        await run_.task

    assert last["status"] == "cancelled" and last["detail"] is None
    assert (await Turn.objects.aget(pk=turn.pk)).status == "cancelled"
    assert creates(gemini) == []
