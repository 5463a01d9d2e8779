"""Files API: resumable chunked upload, get, delete, waiting for ACTIVE."""

import pytest

from conversations.interactions import (
    API_REVISION,
    FileError,
    InteractionsClient,
    NotFoundError,
    RetryPolicy,
)
from conversations.interactions.files import file_id


@pytest.fixture
async def client(fake_upstream):
    async with InteractionsClient(fake_upstream.api_key, base_url=fake_upstream.base_url,
                                  retry=RetryPolicy(base=0.001, cap=0.01)) as c:
        yield c


async def test_by_default_a_file_goes_in_chunks_of_8_mib(client, fake_upstream):
    mib = 1024 * 1024
    file = await client.upload_file(b"x" * (8 * mib + 1), mime_type="video/mp4")
    assert file["sizeBytes"] == str(8 * mib + 1)
    _, *chunks = fake_upstream.requests
    assert [len(c.body) for c in chunks] == [8 * mib, 1]


async def test_it_uploads_in_chunks(client, fake_upstream):
    data = bytes(range(256)) * 10  # 2560 bytes -> 1000 + 1000 + 560
    file = await client.upload_file(data, mime_type="image/png", display_name="cat.png",
                                    chunk_size=1000)
    assert file["name"].startswith("files/") and file["mimeType"] == "image/png"
    assert file["sizeBytes"] == "2560" and file["displayName"] == "cat.png"
    start, *chunks = fake_upstream.requests
    assert start.path == "/upload/v1beta/files"
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-length"] == "2560"
    assert start.headers["x-goog-upload-header-content-type"] == "image/png"
    assert start.json == {"file": {"mime_type": "image/png", "size_bytes": 2560,
                                   "display_name": "cat.png"}}
    assert start.headers["x-goog-api-key"] == fake_upstream.api_key
    assert [(c.headers["x-goog-upload-command"], c.headers["x-goog-upload-offset"],
             len(c.body)) for c in chunks] == [
        ("upload", "0", 1000), ("upload", "1000", 1000), ("upload, finalize", "2000", 560)]
    assert b"".join(c.body for c in chunks) == data
    for req in fake_upstream.requests:
        assert req.headers["api-revision"] == API_REVISION
    # The session URL authorizes the chunks: the key is not sent to it.
    assert all("x-goog-api-key" not in c.headers for c in chunks)


async def test_it_uploads_a_small_file_in_one_request(client, fake_upstream):
    file = await client.upload_file(b"%PDF-1.4", mime_type="application/pdf")
    assert file["sizeBytes"] == "8"
    assert [r.headers["x-goog-upload-command"] for r in fake_upstream.requests] == [
        "start", "upload, finalize"]


async def test_it_gets_and_deletes_files_by_any_name_form(client, fake_upstream):
    file = await client.upload_file(b"abc", mime_type="text/plain")
    assert (await client.get_file(file["name"]))["name"] == file["name"]
    assert (await client.get_file(file["uri"]))["name"] == file["name"]
    await client.delete_file(file_id(file["name"]))
    with pytest.raises(NotFoundError):
        await client.get_file(file["name"])


async def test_it_waits_until_the_file_is_active(client, fake_upstream):
    fake_upstream.configure(file_processing_gets=3)
    file = await client.upload_file(b"video", mime_type="video/mp4")
    assert file["state"] == "PROCESSING"
    active = await client.wait_until_active(file["name"], interval=0.01)
    assert active["state"] == "ACTIVE"
    assert len(fake_upstream.find_requests("GET", "/files/")) == 4


async def test_upload_can_wait_for_active(client, fake_upstream):
    fake_upstream.configure(file_processing_gets=1)
    file = await client.upload_file(b"video", mime_type="video/mp4", wait=True)
    assert file["state"] == "ACTIVE"


async def test_it_stops_waiting_after_the_timeout(client, fake_upstream):
    fake_upstream.configure(file_processing_seconds=30)
    file = await client.upload_file(b"video", mime_type="video/mp4")
    with pytest.raises(FileError, match="still PROCESSING"):
        await client.wait_until_active(file["name"], timeout=0.05, interval=0.01)


async def test_it_retries_a_failed_upload_request(client, fake_upstream):
    fake_upstream.fault(503, path="/upload/", method="POST", times=1, retry_after=None)
    file = await client.upload_file(b"x" * 10, mime_type="text/plain", chunk_size=4)
    assert file["sizeBytes"] == "10"


def test_file_id_accepts_names_uris_and_ids():
    assert file_id("files/abc-1") == "abc-1"
    assert file_id("https://generativelanguage.googleapis.com/v1beta/files/abc") == "abc"
    assert file_id("abc") == "abc"
