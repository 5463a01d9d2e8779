"""A small HTTP/1.1 layer over asyncio streams: request parsing and response framing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_HEAD = 64 * 1024


@dataclass
class Request:
    """One request as received: the fake records these so tests can assert on what was sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    json: Any = None
    time: float = field(default_factory=time.time)
    streamed: int | None = None  # bytes handed to a sink instead of kept in `body`

    @property
    def body_size(self) -> int:
        return len(self.body) if self.streamed is None else self.streamed

    def to_dict(self) -> dict[str, Any]:
        data = {"method": self.method, "path": self.path, "query": self.query,
                "headers": self.headers, "json": self.json, "body_size": self.body_size,
                "time": self.time}
        if self.json is None and self.body and len(self.body) <= MAX_HEAD:
            data["body_text"] = self.body.decode("utf-8", "replace")
        return data


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.1 request we can parse."""


# Given a request whose head is read, where its body goes instead of memory (or None: keep it).
SinkFor = Callable[["Request"], Callable[[bytes], None] | None]
SINK_PIECE = 1024 * 1024


async def read_request(reader: asyncio.StreamReader,
                       sink_for: SinkFor | None = None) -> Request | None:
    """Read one request; None on a clean EOF between requests.

    A body `sink_for` claims is fed to its sink a piece at a time, never held whole: a
    gigabyte upload costs the fake no gigabyte of memory."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise BadRequest("truncated request head") from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("request head too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _ = lines[0].split(" ", 2)
    except ValueError as exc:
        raise BadRequest(f"bad request line {lines[0]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    url = urlsplit(target)
    request = Request(method.upper(), unquote(url.path),
                      dict(parse_qsl(url.query, keep_blank_values=True)), headers)
    sink = sink_for(request) if sink_for is not None else None
    if sink is not None and "content-length" in headers:
        request.streamed = await _pour_body(reader, int(headers["content-length"]), sink)
        return request
    request.body = await _read_body(reader, headers)
    request.json = _parse_json(request.body)
    return request


async def _pour_body(reader: asyncio.StreamReader, length: int,
                     sink: Callable[[bytes], None]) -> int:
    left = length
    while left:
        piece = await reader.read(min(left, SINK_PIECE))
        if not piece:
            raise asyncio.IncompleteReadError(b"", left)
        sink(piece)
        left -= len(piece)
    return length


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length else b""


def _parse_json(body: bytes) -> Any:
    if not body or body[:1] not in (b"{", b"[", b" ", b"\n"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def response_head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


@dataclass
class Response:
    """A complete (non-streaming) response; `body` is JSON-encoded unless it is bytes."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, *, keep_alive: bool) -> bytes:
        if isinstance(self.body, bytes):
            payload, ctype = self.body, "text/plain; charset=utf-8"
        else:
            payload = json.dumps(self.body, ensure_ascii=False).encode()
            ctype = "application/json; charset=utf-8"
        headers = {"Content-Type": ctype, "Content-Length": str(len(payload)),
                   "Connection": "keep-alive" if keep_alive else "close", **self.headers}
        return response_head(self.status, headers) + payload


STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def error(status: int, message: str, *, name: str | None = None,
          headers: dict[str, str] | None = None) -> Response:
    """Google's standard error envelope, with the integer code the front-ends really send."""
    body = {"error": {"code": status, "message": message,
                      "status": name or STATUS_NAMES.get(status, "UNKNOWN")}}
    return Response(status, body, headers or {})
