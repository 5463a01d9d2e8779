"""The fake's Files API as the media path needs it, with plain httpx (no app code involved):
uploads it only counts and hashes, files that expire, and a create that refers to a file
that is gone or not ready."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from devtools.fake_upstream import FakeUpstream


@pytest.fixture
def client(fake_upstream: FakeUpstream) -> httpx.Client:
    with httpx.Client(base_url=fake_upstream.base_url, timeout=10,
                      headers={"x-goog-api-key": fake_upstream.api_key}) as c:
        yield c


def upload(client: httpx.Client, chunks: list[bytes], mime: str = "video/mp4") -> dict:
    """The resumable protocol by hand: start, then one request per chunk."""
    total = sum(map(len, chunks))
    start = client.post("/upload/v1beta/files", json={"file": {"mime_type": mime}}, headers={
        "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(total),
        "X-Goog-Upload-Header-Content-Type": mime})
    url, offset = start.headers["x-goog-upload-url"], 0
    for i, chunk in enumerate(chunks):
        command = "upload, finalize" if i == len(chunks) - 1 else "upload"
        answer = client.post(url, content=chunk, headers={
            "X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)})
        assert answer.status_code == 200, answer.text
        offset += len(chunk)
    return answer.json()["file"]


def use(client: httpx.Client, uri: str) -> httpx.Response:
    return client.post("/v1beta/interactions", json={"model": "gemini-3.5-flash", "input": [
        {"type": "text", "text": "what is in it?"},
        {"type": "video", "uri": uri, "mime_type": "video/mp4"}]})


def test_uploads_it_does_not_keep_are_counted_and_hashed(fake_upstream, client):
    fake_upstream.configure(keep_upload_bytes=False)
    chunks = [b"a" * 3000, b"b" * 3000, b"c" * 10]
    file = upload(client, chunks)
    data = b"".join(chunks)
    assert file["sizeBytes"] == str(len(data))
    assert base64.b64decode(file["sha256Hash"]).decode() == hashlib.sha256(data).hexdigest()
    sent = fake_upstream.find_requests("POST", "/upload/")[1:]
    assert [(r.body, r.body_size) for r in sent] == [(b"", 3000), (b"", 3000), (b"", 10)]
    assert [r.to_dict()["body_size"] for r in sent] == [3000, 3000, 10]


def test_an_unkept_upload_still_refuses_a_wrong_offset(fake_upstream, client):
    fake_upstream.configure(keep_upload_bytes=False)
    start = client.post("/upload/v1beta/files", json={"file": {}}, headers={
        "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"})
    url = start.headers["x-goog-upload-url"]
    wrong = client.post(url, content=b"xyz", headers={
        "X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "5"})
    assert wrong.status_code == 400 and "received 0 bytes" in wrong.json()["error"]["message"]


def test_a_file_in_use_works_until_it_expires_then_is_refused(fake_upstream, client):
    file = upload(client, [b"video bytes"])
    assert use(client, file["uri"]).status_code == 200
    fake_upstream.expire_file(file["name"])
    refused = use(client, file["uri"])
    assert refused.status_code == 403
    assert refused.json()["error"]["status"] == "PERMISSION_DENIED"
    assert file["name"] in refused.json()["error"]["message"]
    assert client.get(f"/v1beta/{file['name']}").status_code == 404
    assert file["name"] not in [f["name"] for f in client.get("/v1beta/files").json()["files"]]


def test_retention_sets_the_expiry_time(fake_upstream, client):
    fake_upstream.configure(file_retention_seconds=0)
    file = upload(client, [b"x"])
    assert file["expirationTime"] <= file["createTime"]
    assert use(client, file["uri"]).status_code == 403


def test_a_file_still_processing_cannot_be_used(fake_upstream, client):
    fake_upstream.configure(file_processing_gets=2)
    file = upload(client, [b"video bytes"])
    assert file["state"] == "PROCESSING"
    refused = use(client, file["uri"])
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == "FAILED_PRECONDITION"
    client.get(f"/v1beta/{file['name']}")
    client.get(f"/v1beta/{file['name']}")
    assert client.get(f"/v1beta/{file['name']}").json()["state"] == "ACTIVE"
    assert use(client, file["uri"]).status_code == 200


def test_processing_can_end_failed(fake_upstream, client):
    fake_upstream.configure(file_processing_gets=1, file_processing_outcome="FAILED")
    file = upload(client, [b"video bytes"])
    client.get(f"/v1beta/{file['name']}")
    failed = client.get(f"/v1beta/{file['name']}").json()
    assert failed["state"] == "FAILED" and failed["error"]["message"]
    assert use(client, file["uri"]).status_code == 400


def test_other_uris_are_not_checked(client):
    assert use(client, "https://storage.googleapis.com/generativeai-downloads/x.mp4"
               ).status_code == 200
