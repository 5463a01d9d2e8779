"""`send` with `attachments`: own files only, not for the offline model, at most so many."""

import uuid

import pytest

from conversations import services
from conversations.models import Attachment, Turn
from tests.streaming import frames_until_done, send, socket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat(alice, settings, fake_upstream):
    """A Gemini conversation of alice's, answered by the fake upstream."""
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    return services.conversation_create(owner=alice, model="gemini-3.5-flash")


def block(attachment) -> dict:
    return {"type": attachment.kind, "mime_type": attachment.mime_type, "attachment": {
        "id": str(attachment.pk), "url": f"/files/{attachment.pk}/", "name": attachment.name,
        "size": attachment.size}}


async def refusal(ws, **frame) -> dict:
    client_id = str(uuid.uuid4())
    await send(ws, type="send", client_id=client_id, parent_id=None, **frame)
    answer = await ws.receive_json_from(timeout=5)
    assert answer["type"] == "error" and answer["client_id"] == client_id, answer
    assert not await Turn.objects.filter(client_id=client_id).aexists()
    return answer


async def test_files_go_first_then_the_text(alice, chat):
    image = await Attachment.objects.acreate(**_row(alice, "a", "image", "image/png"))
    pdf = await Attachment.objects.acreate(**_row(alice, "b", "document", "application/pdf"))
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id="c1", parent_id=None, text="What is this?",
                   attachments=[str(image.pk), str(pdf.pk)])
        created = await ws.receive_json_from(timeout=5)
        assert created["type"] == "turn.created", created
        await frames_until_done(ws)
    turn = await Turn.objects.aget(client_id="c1")
    assert turn.input == [block(image), block(pdf), {"type": "text", "text": "What is this?"}]
    assert created["turn"]["input"] == turn.input


async def test_files_alone_need_no_text(alice, chat):
    image = await Attachment.objects.acreate(**_row(alice, "a", "image", "image/png"))
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id="c2", parent_id=None, text="",
                   attachments=[str(image.pk)])
        assert (await ws.receive_json_from(timeout=5))["type"] == "turn.created"
        await frames_until_done(ws)
    assert (await Turn.objects.aget(client_id="c2")).input == [block(image)]


async def test_another_users_file_is_not_found(alice, bob, chat):
    theirs = await Attachment.objects.acreate(**_row(bob, "a", "image", "image/png"))
    mine = await Attachment.objects.acreate(**_row(alice, "b", "image", "image/png"))
    async with socket(alice, chat) as ws:
        answer = await refusal(ws, text="look", attachments=[str(mine.pk), str(theirs.pk)])
        assert answer["code"] == "not_found"
        assert "does not exist (or is not yours)" in answer["message"]
        answer = await refusal(ws, text="look", attachments=["not-a-uuid"])
        assert answer["code"] == "not_found"


async def test_the_offline_model_takes_no_files(alice, conversation):
    mine = await Attachment.objects.acreate(**_row(alice, "a", "image", "image/png"))
    async with socket(alice, conversation) as ws:
        answer = await refusal(ws, text="look", attachments=[str(mine.pk)])
    assert answer["code"] == "files_unsupported"
    assert "The offline model cannot see files" in answer["message"]


async def test_a_regenerate_with_files_after_a_switch_to_the_offline_model_is_refused(alice,
                                                                                      chat):
    image = await Attachment.objects.acreate(**_row(alice, "a", "image", "image/png"))
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id="c3", parent_id=None, text="What is this?",
                   attachments=[str(image.pk)])
        turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
        await frames_until_done(ws)
        chat.model = "local"
        await chat.asave(update_fields=["model"])
        await send(ws, type="regenerate", client_id="c4", turn_id=turn_id)
        answer = await ws.receive_json_from(timeout=5)

    assert (answer["type"], answer["code"], answer["client_id"]) == (
        "error", "files_unsupported", "c4")
    assert "The offline model cannot see files" in answer["message"]
    assert not await Turn.objects.filter(client_id="c4").aexists()


async def test_too_many_files_are_refused(alice, chat, settings):
    settings.MAX_ATTACHMENTS_PER_MESSAGE = 2
    ids = [str((await Attachment.objects.acreate(**_row(alice, n, "image", "image/png"))).pk)
           for n in "abc"]
    async with socket(alice, chat) as ws:
        answer = await refusal(ws, text="look", attachments=ids)
    assert answer["code"] == "too_many_files"
    assert "at most 2 files; this one has 3" in answer["message"]


async def test_bad_attachments_and_empty_messages_are_refused(alice, chat):
    async with socket(alice, chat) as ws:
        assert (await refusal(ws, text="x", attachments="abc"))["code"] == "bad_frame"
        assert (await refusal(ws, text="x", attachments=[1]))["code"] == "bad_frame"
        answer = await refusal(ws, text=" ", attachments=[])
        assert answer["message"] == "A message needs some text or a file."


def _row(owner, seed: str, kind: str, mime: str) -> dict:
    sha = (seed * 64)[:64]
    return {"owner": owner, "sha256": sha, "file": f"attachments/{owner.pk}/{sha[:2]}/{sha}",
            "kind": kind, "mime_type": mime, "name": f"{seed}.bin", "size": 1234}
