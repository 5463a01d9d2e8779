"""HTTP on the fake's socket: the connection loop, routing and API keys, injected faults, and
SSE responses that follow an interaction's event log."""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from typing import Any

from devtools.fake_upstream import transcripts as tr
from devtools.fake_upstream.config import Config, Fault
from devtools.fake_upstream.control import control
from devtools.fake_upstream.files import FileStore
from devtools.fake_upstream.records import EventStream, InputError, Record
from devtools.fake_upstream.wire import (
    LAST_CHUNK,
    BadRequest,
    Request,
    Response,
    chunk,
    error,
    read_request,
    response_head,
)

# Route names resolve to FakeUpstream._do_<name>: interactions.py and files.py define them.
API = r"^/(?P<v>v[0-9a-z]+)(?:/projects/[^/]+/locations/[^/]+)?"
ROUTES = [
    ("POST", re.compile(API + r"/interactions$"), "create"),
    ("GET", re.compile(API + r"/interactions/(?P<id>[^/]+)$"), "get"),
    ("DELETE", re.compile(API + r"/interactions/(?P<id>[^/]+)$"), "delete"),
    ("POST", re.compile(API + r"/interactions/(?P<id>[^/]+)/cancel$"), "cancel"),
    ("POST", re.compile(r"^/upload/(?P<v>v[0-9a-z]+)/files$"), "upload"),
    ("GET", re.compile(API + r"/files$"), "list_files"),
    ("GET", re.compile(API + r"/files/(?P<id>[a-z0-9-]+)$"), "get_file"),
    ("DELETE", re.compile(API + r"/files/(?P<id>[a-z0-9-]+)$"), "delete_file"),
]
MALFORMED_FRAME = b"event: step.delta\ndata: {\"index\": 0, \"delta\": {\"text\": \"cut\n\n"


class Connections:
    """How FakeUpstream serves a connection (a mixin: the state lives on the server)."""

    api_key: str | None
    config: Config
    _lock: threading.Lock
    _faults: list[Fault]
    _requests: list[Request]
    _tasks: set[asyncio.Task[Any]]
    _files: FileStore

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    req = await read_request(reader, self._files.sink_for)
                except BadRequest as exc:
                    writer.write(error(400, str(exc)).encode(keep_alive=False))
                    break
                if req is None or not await self._respond_safely(req, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client that went away, or shutdown: neither is an error of the fake
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _respond_safely(self, req: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; a bug in the fake becomes a visible 500, not a silent hang-up."""
        try:
            return await self._respond(req, writer)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            trace = traceback.format_exc()
            print(trace, file=sys.stderr)
            writer.write(error(500, f"fake upstream bug:\n{trace}").encode(keep_alive=False))
            return False

    async def _respond(self, req: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be reused."""
        if req.path.startswith("/_control/"):
            result: Response | EventStream = control(self, req)
        else:
            with self._lock:
                self._requests.append(req)
            result = self._status_fault(req) or await self._route(req)
        if isinstance(result, EventStream):
            return await self._stream(result, req, writer)
        keep_alive = req.headers.get("connection", "").lower() != "close"
        writer.write(result.encode(keep_alive=keep_alive))
        await writer.drain()
        return keep_alive

    def _take_faults(self, req: Request, kinds: Iterable[str]) -> list[Fault]:
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if fault.kind in kinds and fault.matches(req):
                    taken.append(fault)
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
        return taken

    def _status_fault(self, req: Request) -> Response | None:
        faults = self._take_faults(req, ("status",))
        if not faults:
            return None
        fault = faults[0]
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        messages = {429: "Resource has been exhausted (e.g. check quota).",
                    500: "An internal error has occurred. Please retry.",
                    503: "The model is overloaded. Please try again later."}
        message = fault.message or messages.get(fault.status, "Injected failure.")
        return error(fault.status, message, headers=headers)

    async def _route(self, req: Request) -> Response | EventStream:
        for method, pattern, name in ROUTES:
            match = pattern.match(req.path)
            if match and method == req.method:
                session = name == "upload" and "upload_id" in req.query  # URL authorises
                if not session and not self._authorized(req):
                    return error(401, "Request is missing a valid API key (x-goog-api-key).")
                try:
                    return await getattr(self, f"_do_{name}")(req, **match.groupdict())
                except InputError as exc:
                    return error(400, str(exc))
        return error(404, f"Method not found: {req.method} {req.path}")

    def _authorized(self, req: Request) -> bool:
        key = req.headers.get("x-goog-api-key") or req.query.get("key")
        if key is None:
            return "authorization" in req.headers
        return self.api_key is None or key == self.api_key

    async def _stream(self, stream: EventStream, req: Request,
                      writer: asyncio.StreamWriter) -> bool:
        """Follow an interaction's event log as chunked SSE, applying stream faults."""
        faults = self._take_faults(req, ("drop", "slow", "malformed"))
        drops = [f.after for f in faults if f.kind == "drop"]
        drop_after = min(drops) if drops else None
        slow = sum(f.delay for f in faults if f.kind == "slow")
        malformed = {f.after for f in faults if f.kind == "malformed"}
        writer.write(response_head(200, {
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked", "Connection": "keep-alive"}))
        record, position, sent = stream.record, stream.position, 0
        while True:
            while position < len(record.events):
                if drop_after is not None and sent >= drop_after:
                    writer.transport.abort()  # no terminating chunk: the client sees a broken body
                    return False
                if sent in malformed:
                    malformed.discard(sent)
                    writer.write(chunk(MALFORMED_FRAME))
                if slow:
                    await asyncio.sleep(slow)
                writer.write(chunk(self._frame(record, position)))
                position += 1
                sent += 1
                await writer.drain()
            if record.finished:
                break
            await record.wake.wait()
        if drop_after is not None and sent >= drop_after:
            writer.transport.abort()
            return False
        writer.write(chunk(tr.DONE_FRAME) + LAST_CHUNK if record.done_marker else LAST_CHUNK)
        await writer.drain()
        return req.headers.get("connection", "").lower() != "close"

    def _frame(self, record: Record, position: int) -> bytes:
        if self.config.emit_timestamps:
            return tr.encode_event({**record.events[position], "_emitted": time.time()})
        return record.wire[position]
