"""Files API: resumable upload in chunks, get, delete, wait for ACTIVE (protocol section 10).

The functions take the transport they send through as their first argument: anything with
the `InteractionsClient`'s request helpers (`Transport`), so this module never imports the
client (the client imports it to offer them as methods).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, BinaryIO, Protocol

import httpx

from .errors import FileError
from .retry import RetryPolicy

CHUNK_SIZE = 8 * 1024 * 1024
# A chunk answered without an upload status is sent again, this many times at most.
CHUNK_ATTEMPTS = 3


class Transport(Protocol):
    """The request helpers the Files API needs (`InteractionsClient` has them)."""

    retry: RetryPolicy

    def url(self, path: str, *, upload: bool = False) -> str: ...

    async def request(self, method: str, url: str, *, body: Any = None,
                      content: bytes | AsyncIterable[memoryview] | None = None,
                      headers: dict[str, str] | None = None,
                      auth: bool = True) -> httpx.Response: ...

    async def request_json(self, method: str, path: str) -> dict[str, Any]: ...


def file_id(name: str) -> str:
    """`files/abc`, `https://.../files/abc` or `abc` -> `abc`."""
    return name.rstrip("/").rsplit("files/", 1)[-1]


Source = bytes | str | os.PathLike[str] | BinaryIO
# Called after each chunk with (bytes sent, total bytes).
Progress = Callable[[int, int], None]


class _Chunks:
    """The bytes to upload, a chunk at a time: views of bytes in memory, or of one of two
    buffers a file on disk is read into (in a worker thread, so the event loop never waits
    for the disk), used in turn: one is sent while the next chunk is read into the other."""

    def __init__(self, source: Source, chunk_size: int) -> None:
        self._data: memoryview | None = None
        self._file: BinaryIO | None = None
        self._close = False
        if isinstance(source, bytes | bytearray | memoryview):
            self._data = memoryview(source).cast("B")
            self.size = len(self._data)
            return
        if isinstance(source, str | os.PathLike):
            self._file, self._close = open(source, "rb"), True  # noqa: SIM115 (close())
        else:
            self._file = source
        start = self._file.tell()
        self.size = self._file.seek(0, os.SEEK_END) - start
        self._file.seek(start)
        count = min(2, -(-self.size // chunk_size)) if self.size else 0
        self._buffers = [bytearray(chunk_size) for _ in range(count)]
        self._reads = 0

    async def read(self, offset: int, size: int) -> memoryview:
        size = min(size, self.size - offset)
        if self._data is not None:
            return self._data[offset:offset + size]
        if size <= 0:
            return memoryview(b"")
        buffer = memoryview(self._buffers[self._reads % len(self._buffers)])[:size]
        self._reads += 1
        got = await asyncio.to_thread(self._file.readinto, buffer)  # type: ignore[union-attr]
        if got != size:
            raise FileError(f"The file changed while it was uploaded (read {got or 0} bytes "
                            f"at {offset}, expected {size}).")
        return buffer

    def close(self) -> None:
        if self._close and self._file is not None:
            self._file.close()


class _Body:
    """A chunk as a request body, in pieces: httpx keeps a request (and its body) alive
    until a garbage collection, so a body that held its own bytes would pile up chunks."""

    PIECE = 1024 * 1024

    def __init__(self, chunk: memoryview) -> None:
        self.chunk = chunk

    async def __aiter__(self) -> AsyncIterator[memoryview]:  # anew for each (re)try
        for start in range(0, len(self.chunk), self.PIECE):
            yield self.chunk[start:start + self.PIECE]


async def upload_file(
    client: Transport,
    source: Source,
    *,
    mime_type: str,
    display_name: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    wait: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Upload `source` (bytes, a path, or a binary file open at its start) and return the
    File resource (camelCase, as the API sends it).

    A file is read one chunk at a time into two buffers used in turn (the next chunk is read
    from disk while the current one is sent): two chunks of memory, whatever its size.
    """
    chunks = _Chunks(source, chunk_size)
    try:
        return await _upload(client, chunks, mime_type, display_name, chunk_size, wait, progress)
    finally:
        chunks.close()


async def _upload(client: Transport, chunks: _Chunks, mime_type: str, display_name: str | None,
                  chunk_size: int, wait: bool, progress: Progress | None) -> dict[str, Any]:
    size = chunks.size
    session_url = await _start_session(client, size, mime_type, display_name)
    upload_headers = {
        "X-Goog-Upload-Header-Content-Length": str(size),
        "X-Goog-Upload-Header-Content-Type": mime_type,
    }
    offset = 0
    ahead = asyncio.ensure_future(chunks.read(0, chunk_size))
    try:
        while True:
            chunk = await ahead
            last = offset + len(chunk) >= size
            if not last:
                ahead = asyncio.ensure_future(chunks.read(offset + len(chunk), chunk_size))
            command = "upload, finalize" if last else "upload"
            status, body = await _send_chunk(client, session_url, chunk, offset, command,
                                             upload_headers)
            offset += len(chunk)
            if progress is not None:
                progress(offset, size)
            if last:
                break
    finally:
        if not ahead.done():
            ahead.cancel()
    if status != "final":
        raise FileError(f"The upload did not finish (upload status {status!r}).",
                        retryable=True)
    file = body.get("file", body) if isinstance(body, dict) else {}
    return await wait_until_active(client, file["name"]) if wait else file


async def _start_session(
    client: Transport, size: int, mime_type: str, display_name: str | None
) -> str:
    meta: dict[str, Any] = {"mime_type": mime_type, "size_bytes": size}
    if display_name:
        meta["display_name"] = display_name
    response = await client.request(
        "POST",
        client.url("/files", upload=True),
        body={"file": meta},
        headers={
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": mime_type,
        },
    )
    url = response.headers.get("x-goog-upload-url")
    if not url:
        raise FileError("The Files API did not open an upload session (no x-goog-upload-url).",
                        retryable=True)
    return url


async def _send_chunk(
    client: Transport,
    url: str,
    chunk: memoryview,
    offset: int,
    command: str,
    upload_headers: dict[str, str],
) -> tuple[str | None, Any]:
    """POST one chunk to the session URL (verbatim, without the API key: the URL authorizes)."""
    headers = {**upload_headers, "X-Goog-Upload-Command": command,
               "X-Goog-Upload-Offset": str(offset), "Content-Length": str(len(chunk))}
    for attempt in range(CHUNK_ATTEMPTS):
        response = await client.request("POST", url, content=_Body(chunk), headers=headers,
                                        auth=False)
        status = response.headers.get("x-goog-upload-status")
        if status:
            return status, (response.json() if response.content else {})
        await asyncio.sleep(client.retry.backoff(attempt))
    raise FileError(f"The upload of bytes {offset}+ was never acknowledged.", retryable=True)


async def get_file(client: Transport, name: str) -> dict[str, Any]:
    return await client.request_json("GET", f"/files/{file_id(name)}")


async def delete_file(client: Transport, name: str) -> None:
    await client.request_json("DELETE", f"/files/{file_id(name)}")


async def wait_until_active(
    client: Transport, name: str, *, timeout: float = 300.0, interval: float = 1.0,
    max_interval: float = 10.0, on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll until the file is ACTIVE, waiting `interval` seconds at first and half as long
    again after each poll (up to `max_interval`); FAILED or a timeout raise FileError.
    `on_poll` sees each File resource that is not ready yet."""
    deadline = time.monotonic() + timeout
    while True:
        file = await get_file(client, name)
        state = file.get("state")
        if state in ("ACTIVE", None):  # no state: nothing to wait for
            return file
        if state == "FAILED":
            message = (file.get("error") or {}).get("message") or "no details"
            raise FileError(f"The file {name} could not be processed: {message}")
        if time.monotonic() + interval > deadline:
            raise FileError(f"The file {name} was still {state} after {timeout:.0f} s.",
                            retryable=True)
        if on_poll is not None:
            on_poll(file)
        await asyncio.sleep(interval)
        interval = min(max_interval, interval * 1.5)
