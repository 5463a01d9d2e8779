"""Files API: resumable upload in chunks, get, delete, wait for ACTIVE (protocol section 10).

The functions take the transport they send through as their first argument: anything with
the `InteractionsClient`'s request helpers (`Transport`), so this module never imports the
client (the client imports it to offer them as methods).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

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
                      content: bytes | None = None, headers: dict[str, str] | None = None,
                      auth: bool = True) -> httpx.Response: ...

    async def request_json(self, method: str, path: str) -> dict[str, Any]: ...


def file_id(name: str) -> str:
    """`files/abc`, `https://.../files/abc` or `abc` -> `abc`."""
    return name.rstrip("/").rsplit("files/", 1)[-1]


async def upload_file(
    client: Transport,
    data: bytes,
    *,
    mime_type: str,
    display_name: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    wait: bool = False,
) -> dict[str, Any]:
    """Upload `data` and return the File resource (camelCase, as the API sends it)."""
    session_url = await _start_session(client, data, mime_type, display_name)
    upload_headers = {
        "X-Goog-Upload-Header-Content-Length": str(len(data)),
        "X-Goog-Upload-Header-Content-Type": mime_type,
    }
    offset = 0
    while True:
        chunk = data[offset:offset + chunk_size]
        last = offset + len(chunk) >= len(data)
        command = "upload, finalize" if last else "upload"
        status, body = await _send_chunk(client, session_url, chunk, offset, command,
                                         upload_headers)
        offset += len(chunk)
        if last:
            if status != "final":
                raise FileError(f"The upload did not finish (upload status {status!r}).")
            file = body.get("file", body) if isinstance(body, dict) else {}
            return await wait_until_active(client, file["name"]) if wait else file


async def _start_session(
    client: Transport, data: bytes, mime_type: str, display_name: str | None
) -> str:
    meta: dict[str, Any] = {"mime_type": mime_type, "size_bytes": len(data)}
    if display_name:
        meta["display_name"] = display_name
    response = await client.request(
        "POST",
        client.url("/files", upload=True),
        body={"file": meta},
        headers={
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(data)),
            "X-Goog-Upload-Header-Content-Type": mime_type,
        },
    )
    url = response.headers.get("x-goog-upload-url")
    if not url:
        raise FileError("The Files API did not open an upload session (no x-goog-upload-url).")
    return url


async def _send_chunk(
    client: Transport,
    url: str,
    chunk: bytes,
    offset: int,
    command: str,
    upload_headers: dict[str, str],
) -> tuple[str | None, Any]:
    """POST one chunk to the session URL (verbatim, without the API key: the URL authorizes)."""
    headers = {**upload_headers, "X-Goog-Upload-Command": command,
               "X-Goog-Upload-Offset": str(offset)}
    for attempt in range(CHUNK_ATTEMPTS):
        response = await client.request("POST", url, content=chunk, headers=headers, auth=False)
        status = response.headers.get("x-goog-upload-status")
        if status:
            return status, (response.json() if response.content else {})
        await asyncio.sleep(client.retry.backoff(attempt))
    raise FileError(f"The upload of bytes {offset}+ was never acknowledged.")


async def get_file(client: Transport, name: str) -> dict[str, Any]:
    return await client.request_json("GET", f"/files/{file_id(name)}")


async def delete_file(client: Transport, name: str) -> None:
    await client.request_json("DELETE", f"/files/{file_id(name)}")


async def wait_until_active(
    client: Transport, name: str, *, timeout: float = 300.0, interval: float = 1.0
) -> dict[str, Any]:
    """Poll until the file is ACTIVE; FAILED or a timeout raise FileError."""
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
            raise FileError(f"The file {name} was still {state} after {timeout:.0f} s.")
        await asyncio.sleep(interval)
