"""Files API: resumable chunked upload, get, delete, waiting for ACTIVE."""

import io

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


class CountingFile(io.FileIO):
    """A real file on disk that remembers how much each read asked for."""

    def __init__(self, path):
        super().__init__(path, "r")
        self.reads = []

    def read(self, size=-1):
        self.reads.append(size)
        return super().read(size)

    def readinto(self, buffer):
        self.reads.append(len(buffer))
        return super().readinto(buffer)


async def test_it_uploads_a_file_from_disk_one_chunk_at_a_time(client, fake_upstream, tmp_path):
    data = bytes(range(256)) * 10  # 2560 bytes -> 1000 + 1000 + 560
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    seen = []
    with CountingFile(path) as source:
        file = await client.upload_file(source, mime_type="video/mp4", chunk_size=1000,
                                        progress=lambda sent, total: seen.append((sent, total)))
        assert source.reads and all(0 < size <= 1000 for size in source.reads)
    assert file["sizeBytes"] == "2560"
    _, *chunks = fake_upstream.requests
    assert [(c.headers["x-goog-upload-offset"], len(c.body)) for c in chunks] == [
        ("0", 1000), ("1000", 1000), ("2000", 560)]
    assert b"".join(c.body for c in chunks) == data
    assert seen == [(1000, 2560), (2000, 2560), (2560, 2560)]


async def test_it_uploads_a_file_by_its_path(client, fake_upstream, tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(b"%PDF-1.4 hello")
    file = await client.upload_file(path, mime_type="application/pdf")
    assert file["sizeBytes"] == "14"
    assert fake_upstream.requests[-1].body == b"%PDF-1.4 hello"


async def test_it_uploads_an_empty_file(client, fake_upstream, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    file = await client.upload_file(str(path), mime_type="text/plain")
    assert file["sizeBytes"] == "0"


async def test_a_file_that_failed_processing_is_a_clear_error(client, fake_upstream):
    fake_upstream.configure(file_processing_gets=1, file_processing_outcome="FAILED")
    file = await client.upload_file(b"video", mime_type="video/mp4")
    with pytest.raises(FileError, match="could not be processed") as failed:
        await client.wait_until_active(file["name"], interval=0.01)
    assert failed.value.retryable is False


async def test_waiting_backs_off_and_reports_each_poll(client, fake_upstream):
    fake_upstream.configure(file_processing_gets=3)
    file = await client.upload_file(b"video", mime_type="video/mp4")
    polled = []
    await client.wait_until_active(file["name"], interval=0.02, max_interval=0.04,
                                   on_poll=lambda f: polled.append(f["state"]))
    assert polled == ["PROCESSING"] * 3
    gets = [r.time for r in fake_upstream.find_requests("GET", "/files/")]
    gaps = [b - a for a, b in zip(gets, gets[1:], strict=False)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.03  # 0.02, then 0.03, then capped at 0.04
