"""POST /files/ and GET /files/<id>/: types from content, limits, dedupe, who may see a file."""

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIRequest
from django.test import Client

from conversations import files_views
from conversations.models import Attachment
from tests import samples

# Files are served as an async stream (daphne's way); the sync test client collects it whole.
pytestmark = pytest.mark.filterwarnings(
    "ignore:StreamingHttpResponse must consume asynchronous iterators")


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(client: Client, name: str, data: bytes, content_type: str = "image/png"):
    return client.post("/files/", {"file": SimpleUploadedFile(name, data, content_type)})


def stored_files(media: Path) -> list[Path]:
    return [p for p in (media / "attachments").rglob("*") if p.is_file()]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", list(samples.ACCEPTED))
def test_it_takes_each_accepted_type_by_its_content(alice_client, alice, media, name):
    data, kind, mime = samples.ACCEPTED[name]
    # The browser's claim is ignored: every file is sent as application/octet-stream.
    response = upload(alice_client, name, data, "application/octet-stream")
    assert response.status_code == 201, response.content
    block = response.json()["attachment"]
    attachment = Attachment.objects.get(owner=alice)
    assert block == {"type": kind, "mime_type": mime, "attachment": {
        "id": str(attachment.pk), "url": f"/files/{attachment.pk}/", "name": name,
        "size": len(data)}}
    assert (attachment.kind, attachment.mime_type) == (kind, mime)
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    sha = attachment.sha256
    assert attachment.file.name == f"attachments/{alice.pk}/{sha[:2]}/{sha}"
    assert Path(attachment.file.path).read_bytes() == data


@pytest.mark.parametrize(("data", "what"), [(samples.ELF, "Linux program (ELF executable)"),
                                            (samples.WINDOWS_EXE, "Windows program")])
def test_it_refuses_a_program_named_png(alice_client, media, data, what):
    response = upload(alice_client, "cat.png", data, "image/png")
    assert response.status_code == 415
    body = response.json()
    assert body["code"] == "unsupported_type"
    assert what in body["error"] and "Accepted: images (PNG" in body["error"]
    assert not Attachment.objects.exists()
    assert stored_files(media) == []  # nor its temporary copy


def test_it_refuses_a_zip_saying_what_it_is(alice_client):
    response = upload(alice_client, "photo.jpg", b"PK\x03\x04" + b"\0" * 200)
    assert response.status_code == 415
    assert "This file is a file of type" in response.json()["error"]


def test_it_refuses_a_file_over_the_limit_naming_the_limit(alice_client, settings, media):
    settings.UPLOAD_MAX_BYTES = 1024
    response = upload(alice_client, "big.png", samples.png() + b"\0" * 2000)
    assert response.status_code == 413
    assert response.json() == {"code": "too_large", "error": "This file is too large; files "
                               "can be at most 1 KiB (UPLOAD_MAX_BYTES). Send a smaller or "
                               "shortened file."}
    assert not Attachment.objects.exists() and stored_files(media) == []


def test_it_refuses_a_body_over_the_limit_before_reading_it(alice_client, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    response = alice_client.post("/files/", data=b"x" * 10, content_type="multipart/form-data;"
                                 " boundary=x", CONTENT_LENGTH=str(10 * 1024**2))
    assert response.status_code == 413
    assert "This file is 10 MiB; files can be at most 1 KiB" in response.json()["error"]


def test_it_refuses_an_empty_file_and_a_missing_one(alice_client):
    empty = upload(alice_client, "nothing.txt", b"")
    assert (empty.status_code, empty.json()["code"]) == (400, "empty")
    missing = alice_client.post("/files/", {"other": SimpleUploadedFile("a.png", samples.png())})
    assert (missing.status_code, missing.json()["code"]) == (400, "no_file")
    assert not Attachment.objects.exists()


def test_the_same_bytes_twice_are_one_attachment_and_one_file(alice_client, alice, media):
    first = upload(alice_client, "cat.png", samples.png()).json()["attachment"]
    again = upload(alice_client, "same-cat.png", samples.png()).json()["attachment"]
    assert again["attachment"]["id"] == first["attachment"]["id"]
    assert again["attachment"]["name"] == "same-cat.png"  # the latest name
    assert Attachment.objects.count() == 1
    assert len(stored_files(media)) == 1  # no temporary copy left behind either


def test_the_same_bytes_from_two_users_are_two_attachments(alice_client, bob, media):
    upload(alice_client, "cat.png", samples.png())
    upload(client_for(bob), "cat.png", samples.png())
    assert Attachment.objects.count() == 2 and len(stored_files(media)) == 2


def test_it_requires_login_and_a_csrf_token(client, alice):
    assert upload(client, "cat.png", samples.png()).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert upload(strict, "cat.png", samples.png()).status_code == 403
    assert not Attachment.objects.exists()


def test_it_keeps_only_the_files_own_name(alice_client):
    name = upload(alice_client, "../../etc/pass\x07wd.png", samples.png()).json()[
        "attachment"]["attachment"]["name"]
    assert name == "passwd.png"


# --- serving ------------------------------------------------------------------------------


@pytest.fixture
def png_id(alice_client) -> str:
    return upload(alice_client, "kitten \"one\" ü.png", samples.png()).json()[
        "attachment"]["attachment"]["id"]


def content(response) -> bytes:
    return b"".join(response)  # the sync client collects the async stream


def test_the_owner_gets_the_file_with_safe_headers(alice_client, png_id):
    response = alice_client.get(f"/files/{png_id}/")
    assert response.status_code == 200
    assert content(response) == samples.png()
    assert response["Content-Type"] == "image/png"  # from the content, not the name
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == (
        "inline; filename*=utf-8''kitten%20%22one%22%20%C3%BC.png")
    assert "sandbox" in response["Content-Security-Policy"]
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert response["Content-Length"] == str(len(samples.png()))


def test_download_1_asks_for_a_download(alice_client, png_id):
    response = alice_client.get(f"/files/{png_id}/?download=1")
    assert response["Content-Disposition"].startswith("attachment; ")


def test_a_text_file_is_downloaded_not_shown(alice_client):
    data = b"<html><script>alert(1)</script></html>"
    block = upload(alice_client, "page.html", data, "text/html").json()["attachment"]
    assert block["mime_type"] == "text/plain"  # harmless text, never served as HTML
    response = alice_client.get(block["attachment"]["url"])
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'


def test_another_user_gets_404(bob, png_id):
    assert client_for(bob).get(f"/files/{png_id}/").status_code == 404


def test_staff_without_the_review_permission_gets_404(bob, png_id):
    bob.is_staff = True
    bob.save()
    assert client_for(bob).get(f"/files/{png_id}/").status_code == 404


def test_a_reviewer_gets_the_file(bob, png_id):
    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(Permission.objects.get(codename="review_conversation"))
    response = client_for(bob).get(f"/files/{png_id}/")
    assert response.status_code == 200 and content(response) == samples.png()


def test_anonymous_and_unknown_ids_get_no_file(client, alice_client, png_id):
    assert client.get(f"/files/{png_id}/").status_code == 302
    assert alice_client.get("/files/00000000-0000-0000-0000-000000000000/").status_code == 404


@pytest.mark.parametrize(("header", "status", "first", "last"), [
    ("bytes=0-3", 206, 0, 3), ("bytes=4-", 206, 4, None), ("bytes=-5", 206, -5, None),
    ("bytes=0-99999", 200, 0, None), ("bytes=1-2,5-6", 200, 0, None), ("nonsense", 200, 0, None),
])
def test_it_serves_ranges(alice_client, png_id, header, status, first, last):
    data = samples.png()
    response = alice_client.get(f"/files/{png_id}/", HTTP_RANGE=header)
    assert response.status_code == status
    expected = data[first:None if last is None else last + 1]
    assert content(response) == expected
    assert response["Content-Length"] == str(len(expected))
    if status == 206:
        start = first % len(data)
        assert response["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"


def test_a_range_past_the_end_is_416(alice_client, png_id):
    response = alice_client.get(f"/files/{png_id}/", HTTP_RANGE="bytes=9999-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(samples.png())}"


def test_a_file_missing_on_disk_is_404(alice_client, png_id):
    os.remove(Attachment.objects.get(pk=png_id).file.path)
    assert alice_client.get(f"/files/{png_id}/").status_code == 404


# --- memory -------------------------------------------------------------------------------


def multipart_file(path: Path, name: str, size: int) -> None:
    """A request body on disk: one file field of `size` bytes, an MP4 by its first bytes."""
    with open(path, "wb") as f:
        f.write(b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="'
                + name.encode() + b'"\r\nContent-Type: application/octet-stream\r\n\r\n')
        f.write(samples.ftyp(b"isom"))
        for _ in range(size // 1024**2):
            f.write(os.urandom(1024**2))
        f.write(b"\r\n--BOUNDARY--\r\n")


def test_a_big_upload_never_sits_in_memory(alice, media, tmp_path):
    size = 30 * 1024**2
    body = tmp_path / "body"
    multipart_file(body, "big.mp4", size)
    with open(body, "rb") as stream:
        # The request reads its body from the file, as a server hands it over.
        request = WSGIRequest({
            "REQUEST_METHOD": "POST", "PATH_INFO": "/files/", "wsgi.input": stream,
            "CONTENT_TYPE": "multipart/form-data; boundary=BOUNDARY",
            "CONTENT_LENGTH": str(body.stat().st_size), "SERVER_NAME": "testserver",
            "SERVER_PORT": "80", "wsgi.url_scheme": "http"})
        request.user = alice
        request._dont_enforce_csrf_checks = True
        tracemalloc.start()
        try:
            response = files_views.upload(request)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            request.close()
    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get()
    assert attachment.mime_type == "video/mp4"
    assert attachment.size == size + len(samples.ftyp(b"isom"))
    assert Path(attachment.file.path).stat().st_size == attachment.size
    # Chunks of 64 KiB go through; a copy of the file would be 30 MiB.
    assert peak < 4 * 1024**2, f"peak {peak / 1024**2:.1f} MiB"
