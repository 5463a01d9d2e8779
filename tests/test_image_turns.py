"""A generated image through the real runner, websocket and fake upstream: it ends up as a
file, and the turn's row, its frames and the snapshot carry its URL, never its bytes."""

import asyncio
import base64
import json
import uuid

import pytest

from conversations import services
from conversations.models import Attachment, Turn
from devtools.fake_upstream.build_fixtures import PNG_B64, tiny_png
from tests.streaming import frames_until_done, replay, send, socket

pytestmark = pytest.mark.django_db(transaction=True)

SECOND_PNG = base64.b64encode(tiny_png(4, 4)).decode()
THOUGHT_PNG = base64.b64encode(tiny_png(2, 2)).decode()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def gemini(settings, fake_upstream):
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    return fake_upstream


async def run_turn(owner, *, model: str = "gemini-3.1-flash-image"):
    """One message in a new conversation: its frames to the end, its row, and the snapshot
    a socket opened afterwards gets."""
    chat = await asyncio.to_thread(services.conversation_create, owner=owner, model=model)
    async with socket(owner, chat) as ws:
        await send(ws, type="send", client_id=str(uuid.uuid4()), text="draw", parent_id=None)
        turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
        frames = await frames_until_done(ws)
    async with socket(owner, chat) as again:
        snapshot = again.snapshot
    return frames, await Turn.objects.aget(pk=turn_id), snapshot


def blocks(steps: list[dict], key: str = "content") -> list[dict]:
    return [b for s in steps for b in (s.get(key) or []) if isinstance(b, dict)]


async def test_a_generated_image_ends_up_as_a_file_and_the_turn_holds_its_url(alice, gemini,
                                                                            media_root):
    gemini.configure(delta_interval=0.02)  # frames go out one by one, as the events arrive
    gemini.script("image_output")
    frames, turn, snapshot = await run_turn(alice)

    [attachment] = [a async for a in Attachment.objects.filter(owner=alice)]
    assert attachment.source == "generated" and attachment.kind == "image"
    assert (media_root / attachment.file.name).read_bytes() == base64.b64decode(PNG_B64)
    assert attachment.name == "image-1.png" and attachment.mime_type == "image/png"

    # The row: the image is a reference, in its place between the two texts.
    row = json.dumps(turn.steps)
    assert PNG_B64 not in row and '"data"' not in row and len(row) < 600
    [step] = turn.steps
    assert [b["type"] for b in step["content"]] == ["text", "image", "text"]
    assert step["content"][0]["text"] == "Here is a tiny sunset gradient:"
    assert step["content"][2]["text"] == "Enjoy! 🎨"
    assert step["content"][1] == {"mime_type": "image/png", "type": "image", "attachment": {
        "id": str(attachment.pk), "url": f"/files/{attachment.pk}/", "name": "image-1.png",
        "size": attachment.size}}

    # The frames and the snapshot: what the row holds, the URL, never the bytes.
    assert PNG_B64 not in json.dumps(frames) and '"data"' not in json.dumps(frames)
    assert replay(frames, str(turn.pk))[0] == turn.steps
    [shown] = snapshot["turns"]
    assert shown["steps"] == turn.steps and PNG_B64 not in json.dumps(snapshot)


MIXED = [  # media in every place a stream can carry them, text after each
    {"event_type": "interaction.created",
     "interaction": {"id": "v1_mixed", "status": "in_progress", "object": "interaction"}},
    {"event_type": "step.start", "index": 0, "step": {"type": "thought", "summary": [
        {"type": "text", "text": "Sketching first:"}]}},
    {"event_type": "step.delta", "index": 0, "delta": {"type": "thought_summary", "content": {
        "type": "image", "data": THOUGHT_PNG, "mime_type": "image/png"}}},
    {"event_type": "step.stop", "index": 0},
    {"event_type": "step.start", "index": 1, "step": {"type": "model_output", "content": [
        {"type": "image", "data": PNG_B64, "mime_type": "image/png"}]}},
    {"event_type": "step.delta", "index": 1, "delta": {"type": "text", "text": "One, "}},
    {"event_type": "step.delta", "index": 1,
     "delta": {"type": "image", "data": SECOND_PNG, "mime_type": "image/png"}},
    {"event_type": "step.delta", "index": 1, "delta": {"type": "text", "text": "two."}},
    {"event_type": "step.stop", "index": 1},
    {"event_type": "interaction.completed",
     "interaction": {"id": "v1_mixed", "status": "completed"}},
]


async def test_images_in_a_start_a_delta_and_a_thought_keep_their_order(alice, gemini):
    gemini.script(MIXED)
    frames, turn, _ = await run_turn(alice)

    thought, output = turn.steps
    assert [b["type"] for b in thought["summary"]] == ["text", "image"]
    assert [b.get("type") for b in output["content"]] == ["image", "text", "image", "text"]
    assert output["content"][1]["text"] == "One, " and output["content"][3]["text"] == "two."
    names = [b["attachment"]["name"] for b in blocks(turn.steps) + blocks(turn.steps, "summary")
             if b["type"] == "image"]
    assert names == ["image-2.png", "image-3.png", "image-1.png"]  # numbered as they came
    assert '"data"' not in json.dumps(turn.steps) + json.dumps(frames)
    saved = {a.name: a.size async for a in Attachment.objects.filter(owner=alice)}
    assert saved == {"image-1.png": len(base64.b64decode(THOUGHT_PNG)),
                     "image-2.png": len(base64.b64decode(PNG_B64)),
                     "image-3.png": len(base64.b64decode(SECOND_PNG))}
    assert replay(frames, str(turn.pk))[0] == turn.steps


async def test_the_same_image_twice_is_one_file(alice, gemini, media_root):
    gemini.script("image_output", "seed_image")
    _, first, _ = await run_turn(alice)
    _, second, _ = await run_turn(alice)

    [a] = [b["attachment"] for b in blocks(first.steps) if b["type"] == "image"]
    [b] = [b["attachment"] for b in blocks(second.steps) if b["type"] == "image"]
    assert a == b
    assert [p.name for p in media_root.rglob("*") if p.is_file()] == [
        (await Attachment.objects.aget()).sha256]


async def test_a_file_that_cannot_be_written_loses_nothing(alice, gemini, settings, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = blocked
    gemini.script("image_output")
    _, turn, _ = await run_turn(alice)

    assert turn.status == "completed"
    [step] = turn.steps
    assert [b["type"] for b in step["content"]] == ["text", "image", "text"]
    assert step["content"][1]["data"] == PNG_B64  # the last resort: kept inline
