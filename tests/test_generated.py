"""Generated media as files: finding inline data in events, the service that stores it, and
/files/<uuid>/ (owner and reviewers only)."""

import base64
import hashlib
import logging
from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from conversations import generated
from conversations.interactions.events import parse_event
from conversations.models import Attachment, attachment_path
from devtools.fake_upstream.build_fixtures import PNG_B64, tiny_png

# The async tests write from the database thread, outside the test's transaction.
ASYNC_DB = pytest.mark.django_db(transaction=True)
PNG = tiny_png()
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def image_delta(data: str = PNG_B64) -> dict:
    return {"event_type": "step.delta", "index": 0,
            "delta": {"data": data, "mime_type": "image/png", "type": "image"}}


# --- finding inline media ------------------------------------------------------------

EVENTS_WITH_MEDIA = {
    "an image delta": image_delta(),
    "an image in a thought summary": {
        "event_type": "step.delta", "index": 0,
        "delta": {"type": "thought_summary",
                  "content": {"type": "image", "data": PNG_B64, "mime_type": "image/png"}}},
    "a step.start that already carries it": {
        "event_type": "step.start", "index": 0,
        "step": {"type": "model_output", "content": [
            {"type": "text", "text": "Here:"},
            {"type": "image", "data": PNG_B64, "mime_type": "image/png"}]}},
    "the steps of interaction.completed": {
        "event_type": "interaction.completed",
        "interaction": {"id": "i", "status": "completed", "steps": [
            {"type": "model_output", "content": [
                {"type": "audio", "data": PNG_B64, "mime_type": "audio/wav"}]}]}},
}


@pytest.mark.parametrize("name", EVENTS_WITH_MEDIA)
def test_it_finds_inline_media_wherever_an_event_carries_it(name):
    event = parse_event(EVENTS_WITH_MEDIA[name])
    assert generated.carries_media(event)
    [block] = generated.find_media(event.raw, type(event))
    assert block["data"] == PNG_B64


@pytest.mark.parametrize("raw", [
    {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": "hi"}},
    {"event_type": "step.delta", "index": 0,
     "delta": {"type": "image", "uri": "https://x.example/a.png", "mime_type": "image/png"}},
    {"event_type": "step.start", "index": 0, "step": {"type": "model_output"}},
    {"event_type": "interaction.completed", "interaction": {"id": "i", "status": "completed"}},
])
def test_it_leaves_events_without_inline_media_alone(raw):
    event = parse_event(raw)
    assert not generated.carries_media(event)
    assert generated.find_media(event.raw, type(event)) == []


def test_a_reference_takes_the_place_of_the_data_and_keeps_every_other_field(alice):
    attachment = generated.save_generated(owner_id=alice.pk, data=PNG, kind="image",
                                          name="image-1.png")
    block = {"type": "image", "data": PNG_B64, "mime_type": "image/png", "resolution": "high"}
    generated.refer(block, attachment)
    assert list(block) == ["type", "attachment", "mime_type", "resolution"]
    assert block["attachment"] == {"id": str(attachment.pk),
                                   "url": f"/files/{attachment.pk}/",
                                   "name": "image-1.png", "size": len(PNG)}


def test_a_file_is_named_after_its_kind_number_and_type():
    assert generated.file_name("image", 2, "image/png") == "image-2.png"
    assert generated.file_name("image", 1, "image/jpeg") == "image-1.jpg"
    assert generated.file_name("audio", 1, "audio/L16;codec=pcm;rate=24000") == "audio-1"


# --- the service ---------------------------------------------------------------------

def test_it_stores_the_bytes_once_per_owner(alice, bob, media_root):
    first = generated.save_generated(owner_id=alice.pk, data=PNG, kind="image",
                                     name="image-1.png")
    again = generated.save_generated(owner_id=alice.pk, data=PNG, kind="image",
                                     name="image-2.png")
    bobs = generated.save_generated(owner_id=bob.pk, data=PNG, kind="image", name="image-1.png")

    assert again.pk == first.pk and bobs.pk != first.pk
    assert first.source == "generated" and first.mime_type == "image/png"
    assert first.sha256 == hashlib.sha256(PNG).hexdigest() and first.size == len(PNG)
    assert first.file.name == attachment_path(first, "")
    assert (media_root / first.file.name).read_bytes() == PNG
    assert Attachment.objects.count() == 2
    assert len([p for p in media_root.rglob("*") if p.is_file()]) == 2  # no copies


@pytest.mark.parametrize(("data", "kind"), [(SVG, "image"), (b"<html><script>x</script>",
                                                            "image"), (PNG, "video")])
def test_a_file_is_never_served_as_what_it_is_not(alice, data, kind):
    attachment = generated.save_generated(owner_id=alice.pk, data=data, kind=kind, name="x")
    assert attachment.mime_type == "application/octet-stream"


@ASYNC_DB
async def test_data_that_is_not_base64_stays_in_the_step(alice, caplog):
    event = parse_event(image_delta("not base64 at all!"))
    with caplog.at_level(logging.ERROR, logger="conversations.generated"):
        kept = await generated.store_media(event, owner_id=alice.pk, numbers=Counter())
    assert kept.raw["delta"]["data"] == "not base64 at all!"
    assert "could not save a generated image" in caplog.text
    assert await Attachment.objects.acount() == 0


@ASYNC_DB
async def test_a_file_that_cannot_be_written_leaves_the_data_in_the_step(alice, settings,
                                                                         tmp_path, caplog):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the media directory should be")
    settings.MEDIA_ROOT = blocked
    event = parse_event(image_delta())
    with caplog.at_level(logging.ERROR, logger="conversations.generated"):
        kept = await generated.store_media(event, owner_id=alice.pk, numbers=Counter())
    assert kept.raw["delta"]["data"] == PNG_B64
    assert "could not save a generated image" in caplog.text


@ASYNC_DB
async def test_storing_numbers_the_turns_media_and_leaves_the_event_it_was_given(alice):
    numbers = Counter()
    raw = EVENTS_WITH_MEDIA["a step.start that already carries it"]
    event = parse_event(raw)
    stored = await generated.store_media(event, owner_id=alice.pk, numbers=numbers)
    second = await generated.store_media(parse_event(image_delta(base64.b64encode(
        tiny_png(4, 4)).decode())), owner_id=alice.pk, numbers=numbers)

    assert raw["step"]["content"][1]["data"] == PNG_B64  # the backend's own event
    assert stored.raw["step"]["content"][1]["attachment"]["name"] == "image-1.png"
    assert second.raw["delta"]["attachment"]["name"] == "image-2.png"
    assert "data" not in second.raw["delta"]


# --- /files/<uuid>/ --------------------------------------------------------------------

@pytest.fixture
def png(alice):
    return generated.save_generated(owner_id=alice.pk, data=PNG, kind="image",
                                    name="image-1.png")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_gets_the_file(alice_client, png):
    response = alice_client.get(f"/files/{png.pk}/")
    assert response.status_code == 200
    assert b"".join(response) == PNG  # the sync client collects the async stream
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Content-Disposition"].startswith("inline")


def test_download_asks_the_browser_to_save_it(alice_client, png):
    response = alice_client.get(f"/files/{png.pk}/?download=1")
    assert response["Content-Disposition"] == 'attachment; filename="image-1.png"'


def test_another_user_gets_404(bob, png):
    assert client_for(bob).get(f"/files/{png.pk}/").status_code == 404


def test_staff_need_the_review_permission(bob, png):
    bob.is_staff = True
    bob.save()
    assert client_for(bob).get(f"/files/{png.pk}/").status_code == 404
    bob.user_permissions.add(Permission.objects.get(codename="review_conversation"))
    assert client_for(bob).get(f"/files/{png.pk}/").status_code == 200


def test_it_needs_a_login(client, png):
    response = client.get(f"/files/{png.pk}/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_a_row_whose_file_is_gone_is_404(alice_client, png, media_root):
    (media_root / png.file.name).unlink()
    assert alice_client.get(f"/files/{png.pk}/").status_code == 404


def test_an_unknown_file_is_404(alice_client):
    assert alice_client.get("/files/00000000-0000-4000-8000-000000000000/").status_code == 404
