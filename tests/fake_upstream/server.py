"""The fake Gemini Interactions API upstream: a real HTTP/1.1 server on loopback.

Runs its own asyncio loop in a daemon thread (`FakeUpstream().start()`), or in the foreground
(`python -m tests.fake_upstream`). Every create runs a producer task that appends events to the
interaction's log; SSE responses (create or GET resume) follow that log, so a dropped stream can
be resumed while the interaction keeps generating.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import re
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.fake_upstream import transcripts as tr
from tests.fake_upstream.files import FileStore
from tests.fake_upstream.wire import (
    LAST_CHUNK,
    BadRequest,
    Request,
    Response,
    chunk,
    error,
    read_request,
    response_head,
)

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
# Request fields the resource echoes back (protocol section 4).
ECHOED = ("model", "agent", "previous_interaction_id", "system_instruction", "tools",
          "generation_config", "agent_config", "response_format", "safety_settings", "labels",
          "service_tier", "webhook_config", "environment", "response_mime_type",
          "response_modalities", "cached_content")
RUNNING = ("in_progress", "queued")
MALFORMED_FRAME = b"event: step.delta\ndata: {\"index\": 0, \"delta\": {\"text\": \"cut\n\n"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Config:
    """Knobs settable per server or through POST /_control/config."""

    delta_interval: float = 0.0  # seconds between step.delta events (1/20 = 20 deltas/s)
    deltas: int | None = None  # echo replies padded/merged to exactly this many text deltas
    emit_timestamps: bool = False  # add "_emitted": time.time() to every SSE event's JSON
    stamp_text: bool = False  # end each text delta with "[seq:emit time]" (latency, loss, dups)
    background_delay: float = 0.2  # background runs wait this long before generating
    file_processing_gets: int = 0  # GETs that still report PROCESSING after the upload
    file_processing_seconds: float = 0.0  # ... and seconds
    done_marker: bool = False  # echo replies end with `event: done` / `data: [DONE]`


@dataclass
class Fault:
    """An injected failure; `times` None means forever."""

    kind: str  # "status", "drop", "slow" or "malformed"
    status: int = 0
    times: int | None = 1
    method: str | None = None
    path: str | None = None  # regex searched in the request path
    after: int = 0  # drop after / malformed line at this many events of the response
    delay: float = 0.0  # slow: seconds before each event
    retry_after: str | None = "0"
    message: str | None = None

    def matches(self, req: Request) -> bool:
        return ((self.method is None or self.method.upper() == req.method)
                and (self.path is None or re.search(self.path, req.path) is not None))


class InputError(Exception):
    """A create body the real service would reject with 400."""


class Record:
    """One interaction: its request, event log (with ids) and the folded resource."""

    def __init__(self, iid: str, body: dict[str, Any], input_steps: list[dict[str, Any]],
                 transcript: tr.Transcript) -> None:
        self.id = iid
        self.body = body
        self.input_steps = input_steps
        self.store = body.get("store", True) is not False
        self.background = body.get("background") is True
        self.created = self.updated = now_iso()
        self.events: list[dict[str, Any]] = []
        self.wire: list[bytes] = []
        self.index_of: dict[str, int] = {}
        self.folder = tr.Folder()
        self.status = "in_progress"
        self.finished = False
        self.done_marker = transcript.done_marker
        self.keep_ids = any("event_id" in e for e in transcript.events)
        self.id_prefix = secrets.token_hex(4)
        self.tokens: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Output steps produced by this interaction so far."""
        return self.folder.output_steps()

    def resource(self, *, timeline: bool = False, include_input: bool = False) -> dict[str, Any]:
        """The Interaction resource: POST shows only new steps, GET the timeline with input."""
        data: dict[str, Any] = {"id": self.id, "status": self.status, "object": "interaction",
                                "created": self.created, "updated": self.updated}
        data.update({k: self.body[k] for k in ECHOED if k in self.body})
        steps = (self.input_steps if timeline else []) + self.steps
        if steps:
            data["steps"] = copy.deepcopy(steps)
        if self.folder.usage:
            data["usage"] = self.folder.usage
        if self.folder.continuation_token:
            data["continuation_token"] = self.folder.continuation_token
        if self.folder.errors:
            data["errors"] = self.folder.errors
        if "environment" in self.body:
            data["environment_id"] = f"env_{self.id_prefix}"
        if include_input and "input" in self.body:
            data["input"] = echo_input(self.body["input"])
        return data

    def rewrite(self, event: dict[str, Any], position: int,
                tokens: dict[str, str]) -> dict[str, Any]:
        """Give a transcript event this interaction's id, fresh tokens and fresh event ids."""
        event = dict(event)
        if isinstance(event.get("interaction"), dict):
            inner = event["interaction"] = dict(event["interaction"])
            inner["id"] = self.id
            for key in ("model", "agent"):
                if key in inner and key in self.body:
                    inner[key] = self.body[key]
            if "created" in inner:
                inner["created"] = self.created
            self._rewrite_token(inner, tokens)
        if "interaction_id" in event:
            event["interaction_id"] = self.id
        self._rewrite_token(event, tokens)
        wanted = "event_id" in event if self.keep_ids else tr.wants_event_id(event)
        if wanted:
            event_id = f"{self.id_prefix}-{position}"
            event["event_id"] = event_id
            event["event_type"] = event.pop("event_type", None)
            self.index_of[event_id] = position
        return event

    def _rewrite_token(self, holder: dict[str, Any], tokens: dict[str, str]) -> None:
        old = holder.get("continuation_token")
        if old:
            if old not in self.tokens:
                self.tokens[old] = "ct_" + secrets.token_urlsafe(12)
                tokens[self.tokens[old]] = self.id
            holder["continuation_token"] = self.tokens[old]

    def append(self, event: dict[str, Any], tokens: dict[str, str]) -> None:
        event = self.rewrite(event, len(self.events), tokens)
        self.events.append(event)
        self.wire.append(tr.encode_event(event))
        self.folder.feed(event)
        if self.folder.status and self.folder.status != self.status:
            self.status = self.folder.status
            self.updated = now_iso()
        self.notify()

    def notify(self) -> None:
        self.wake.set()
        self.wake = asyncio.Event()

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.updated = now_iso()
            self.done.set()
            self.notify()


def is_text_delta(event: dict[str, Any]) -> bool:
    return event.get("event_type") == "step.delta" and tr.delta_type(event["delta"]) == "text"


def stamp_text(event: dict[str, Any], seq: int) -> dict[str, Any]:
    """The delta with "[seq:emit time]" appended: a client measures latency whatever the framing."""
    delta = event["delta"]
    text = f"{delta.get('text', '')}[{seq}:{time.time():.6f}]"
    return {**event, "delta": {**delta, "text": text}}


def new_interaction_id() -> str:
    return "v1_" + secrets.token_urlsafe(24)


def normalize_input(value: Any) -> list[dict[str, Any]]:
    """The four `input` shapes of section 3.2 as timeline steps (string content becomes a list)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [_user_input([{"type": "text", "text": value}])]
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, dict) for i in items):
        raise InputError("input items must be JSON objects")
    is_step = [i.get("type") in tr.STEP_TYPES for i in items]
    if all(is_step):
        return [_normalize_step(i) for i in items]
    if any(is_step):
        raise InputError("input mixes steps and content blocks")
    return [_user_input(items)]


def echo_input(value: Any) -> Any:
    """The request input as GET ?include_input=true shows it: string step content as a list."""
    if isinstance(value, list):
        return [_normalize_step(i) if isinstance(i, dict) else i for i in value]
    return value


def _user_input(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    typed = [b if "type" in b or "text" not in b else {"type": "text", **b} for b in blocks]
    return {"type": "user_input", "content": typed}


def _normalize_step(step: dict[str, Any]) -> dict[str, Any]:
    if step.get("type") == "user_input" and isinstance(step.get("content"), str):
        return {**step, "content": [{"type": "text", "text": step["content"]}]}
    return step


def last_user_text(steps: list[dict[str, Any]]) -> str:
    """What the echo reply repeats: the last user text, or a summary of function results."""
    for step in reversed(steps):
        if step.get("type") == "user_input":
            content = step.get("content") or []
            texts = [b.get("text", "") for b in content if b.get("type") == "text"]
            return texts[-1] if texts else "(no text)"
        if step.get("type") == "function_result":
            results = [s for s in steps if s.get("type") == "function_result"]
            return "; ".join(f"{r.get('name') or r.get('call_id')} returned {_result_text(r)}"
                             for r in results)
    return "(no input)"


def _result_text(step: dict[str, Any]) -> str:
    result = step.get("result")
    if isinstance(result, list):
        return " ".join(str(b.get("text", "")) for b in result if isinstance(b, dict))
    return result if isinstance(result, str) else json.dumps(result)


class FakeUpstream:
    """The fake upstream. Use as a context manager, or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = "test-key",
                 delay: float | None = None, **config: Any) -> None:
        self.host, self.port = host, port
        self.api_key = api_key
        self.config = Config(**config)
        if delay is not None:
            self.config.delta_interval = delay
        self._initial_config = self.config
        self._lock = threading.Lock()
        self._scripts: list[tr.Transcript] = []
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._store: dict[str, Record] = {}
        self._tokens: dict[str, str] = {}  # continuation token -> interaction that issued it
        self._files = FileStore()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeUpstream:
        """Serve from a daemon thread with its own event loop."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as exc:  # report to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener, cancel streams and producers, stop the loop and join the thread."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve_forever(self) -> None:
        """Serve in the current loop (the separate-process mode of __main__)."""
        self._loop = asyncio.get_running_loop()
        await self._open()
        try:
            await asyncio.Event().wait()
        finally:
            await self._close()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port,
                                                  backlog=2048, limit=256 * 1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- test-facing API --------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every API/upload request received (not /_control), oldest first."""
        with self._lock:
            return list(self._requests)

    def find_requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Recorded requests filtered by method and a regex searched in the path."""
        return [r for r in self.requests if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def interactions(self) -> dict[str, Record]:
        """Stored interactions by id (a snapshot of the mapping)."""
        return dict(self._store)

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v.resource) for k, v in self._files.files.items()}

    def history(self, interaction_id: str) -> list[dict[str, Any]]:
        """The whole conversation the server holds for an id, following previous_interaction_id."""
        chain, record = [], self._store.get(interaction_id)
        while record is not None:
            chain.append(record)
            record = self._store.get(record.body.get("previous_interaction_id") or "")
        return [s for r in reversed(chain) for s in r.input_steps + r.steps]

    def script(self, *items: str | list[dict[str, Any]] | dict[str, Any] | tr.Transcript) -> None:
        """Queue replies for the next creates: fixture names, event lists, Interactions...

        A name with hops (`continuation` -> `continuation_hop1`, `_hop2`) queues every hop.
        """
        transcripts = [t for item in items for t in self._resolve(item)]
        with self._lock:
            self._scripts.extend(transcripts)

    @staticmethod
    def _resolve(item: Any) -> list[tr.Transcript]:
        if isinstance(item, tr.Transcript):
            return [item.copy()]
        if isinstance(item, str):
            return tr.load(item)
        if isinstance(item, list):
            return [tr.Transcript("scripted", copy.deepcopy(item))]
        if isinstance(item, dict) and "status" in item:
            return [tr.Transcript("scripted", tr.explode(item))]
        raise TypeError(f"cannot script {item!r}")

    def fault(self, kind: str | int, *, times: int | None = 1, method: str | None = None,
              path: str | None = None, after: int = 0, delay: float = 0.0,
              retry_after: str | float | None = "0", message: str | None = None) -> Fault:
        """Inject a failure: an HTTP status (429/500/503/...), "drop", "slow" or "malformed"."""
        status = int(kind) if str(kind).isdigit() else 0
        made = Fault("status" if status else str(kind), status, times, method, path, after, delay,
                     None if retry_after is None else str(retry_after), message)
        if made.kind not in ("status", "drop", "slow", "malformed"):
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._faults.append(made)
        return made

    def configure(self, **changes: Any) -> Config:
        self.config = dataclasses.replace(self.config, **changes)
        return self.config

    def reset(self) -> None:
        """Forget scripts, faults, requests, interactions and files; restore the start config."""
        with self._lock:
            self._scripts.clear()
            self._faults.clear()
            self._requests.clear()
        self._store.clear()
        self._tokens.clear()
        self._files = FileStore()
        self.config = self._initial_config

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no interaction is still generating."""
        deadline = time.monotonic() + timeout
        while any(not r.finished for r in list(self._store.values())):
            if time.monotonic() > deadline:
                raise TimeoutError("interactions still generating")
            time.sleep(0.01)

    # --- connections ------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    req = await read_request(reader)
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
            result: Response | EventStream = self._control(req)
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

    # --- interactions -----------------------------------------------------------------------

    async def _do_create(self, req: Request, v: str) -> Response | EventStream:
        body = req.json
        if not isinstance(body, dict):
            return error(400, "The request body must be a JSON object.")
        if bool(body.get("model")) == bool(body.get("agent")):
            return error(400, "Exactly one of 'model' or 'agent' must be set.")
        if body.get("background") is True and body.get("store") is False:
            return error(400, "Background interactions require store=true.")
        previous, problem = self._previous(body)
        if problem is not None:
            return problem
        if "input" not in body and not body.get("continuation_token"):
            return error(400, "'input' is required.")
        steps = normalize_input(body.get("input"))
        self._check_function_results(steps, previous)
        self._check_continuation(body)
        transcript = self._next_transcript(body, steps)
        record = Record(new_interaction_id(), body, steps, transcript)
        if record.store:
            self._store[record.id] = record
        record.task = self._spawn(self._produce(record, transcript))
        if body.get("stream") is True or req.query.get("alt") == "sse":
            return EventStream(record, 0)
        if not record.background:
            await record.done.wait()
        return Response(200, record.resource())

    def _previous(self, body: dict[str, Any]) -> tuple[Record | None, Response | None]:
        pid = body.get("previous_interaction_id")
        if not pid:
            return None, None
        previous = self._store.get(pid)
        if previous is None:
            return None, error(404, f"Interaction {pid} was not found (unknown or not stored).")
        if previous.status in RUNNING:
            return None, error(400, f"Interaction {pid} is still {previous.status}; wait for it "
                                    "or cancel it before continuing.", name="FAILED_PRECONDITION")
        return previous, None

    @staticmethod
    def _check_function_results(steps: list[dict[str, Any]], previous: Record | None) -> None:
        pending = set()
        if previous is not None and previous.status == "requires_action":
            before = previous.steps
            answered = {s.get("call_id") for s in before if s.get("type") == "function_result"}
            pending = {s.get("id") for s in before if s.get("type") == "function_call"} - answered
        known = set(pending)
        for step in steps:
            if step.get("type") == "function_call":
                known.add(step.get("id"))
            elif step.get("type") == "function_result" and step.get("call_id") not in known:
                raise InputError(f"function_result call_id {step.get('call_id')!r} does not match "
                                 "any function_call.")
        missing = pending - {s.get("call_id") for s in steps if s.get("type") == "function_result"}
        if missing:
            raise InputError(f"Missing function_result for call_id(s): {sorted(missing)}.")

    def _check_continuation(self, body: dict[str, Any]) -> None:
        token = body.get("continuation_token")
        if not token:
            return
        owner = self._tokens.get(token)
        if owner is None:
            raise InputError("Unknown continuation_token.")
        pid = body.get("previous_interaction_id")
        if pid and pid != owner:
            raise InputError(f"continuation_token was not issued by interaction {pid}.")

    def _next_transcript(self, body: dict[str, Any], steps: list[dict[str, Any]]) -> tr.Transcript:
        with self._lock:
            scripted = self._scripts.pop(0) if self._scripts else None
        if scripted is None:
            thinking = bool((body.get("generation_config") or {}).get("thinking_level"))
            limit = (body.get("generation_config") or {}).get("max_output_tokens")
            text = "Echo: " + (last_user_text(steps) if steps else "(continued)")
            scripted = tr.reply(text, model=body.get("model") or body.get("agent"),
                                deltas=self.config.deltas, thinking=thinking,
                                input_tokens=4 + len(tr.words(json.dumps(body.get("input")))),
                                max_tokens=limit)
            scripted.done_marker = self.config.done_marker
        return scripted

    async def _produce(self, record: Record, transcript: tr.Transcript) -> None:
        """Append the transcript's events to the record's log at the configured pace."""
        stamped = 0
        try:
            if record.background and self.config.background_delay:
                await asyncio.sleep(self.config.background_delay)
            for event in transcript.events:
                interval = self.config.delta_interval
                if interval and event.get("event_type") == "step.delta":
                    await asyncio.sleep(interval)
                if self.config.stamp_text and is_text_delta(event):
                    stamped += 1
                    event = stamp_text(event, stamped)
                record.append(event, self._tokens)
        finally:
            record.finish()

    async def _do_get(self, req: Request, v: str, id: str) -> Response | EventStream:
        record = self._store.get(id)
        if record is None:
            return error(404, f"Interaction {id} was not found.")
        if req.query.get("stream") != "true":
            return Response(200, record.resource(
                timeline=True, include_input=req.query.get("include_input") == "true"))
        last = req.query.get("last_event_id")
        if not last:
            return EventStream(record, 0)
        if last not in record.index_of:
            return error(400, f"Unknown last_event_id {last!r} for interaction {id}.")
        return EventStream(record, record.index_of[last] + 1)

    async def _do_cancel(self, req: Request, v: str, id: str) -> Response:
        record = self._store.get(id)
        if record is None:
            return error(404, f"Interaction {id} was not found.")
        if not (record.background and record.status in RUNNING and not record.finished):
            return error(400, "Only a running background interaction can be cancelled.",
                         name="FAILED_PRECONDITION")
        self._abort(record, "cancelled")
        return Response(200, record.resource())

    def _abort(self, record: Record, status: str) -> None:
        if record.task is not None:
            record.task.cancel()  # it is suspended in a sleep, so nothing more gets appended
        # The placeholder id makes transcripts that carry ids give this event one too.
        record.append({"interaction": {"id": record.id, "status": status}, "event_id": "",
                       "event_type": "interaction.completed"}, self._tokens)
        record.finish()

    async def _do_delete(self, req: Request, v: str, id: str) -> Response:
        record = self._store.pop(id, None)
        if record is None:
            return error(404, f"Interaction {id} was not found.")
        if not record.finished:
            self._abort(record, "cancelled")
        return Response(200, {})

    # --- files ------------------------------------------------------------------------------

    async def _do_upload(self, req: Request, v: str) -> Response:
        if "upload_id" in req.query:
            return self._files.chunk(req, self.base_url, self.config)
        return self._files.start(req, v, self.base_url)

    async def _do_list_files(self, req: Request, v: str) -> Response:
        return self._files.list()

    async def _do_get_file(self, req: Request, v: str, id: str) -> Response:
        return self._files.get(id)

    async def _do_delete_file(self, req: Request, v: str, id: str) -> Response:
        return self._files.delete(id)

    # --- SSE --------------------------------------------------------------------------------

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

    # --- control ----------------------------------------------------------------------------

    def _control(self, req: Request) -> Response:
        """The /_control/ API, so a separate process can be scripted (no API key needed)."""
        action = (req.method, req.path.removeprefix("/_control/").strip("/"))
        body = req.json if req.json is not None else {}
        try:
            handler = CONTROL[action]
        except KeyError:
            return error(404, f"Unknown control endpoint {req.method} {req.path}")
        try:
            return Response(200, handler(self, body))
        except (TypeError, ValueError, KeyError) as exc:
            return error(400, f"Bad control request: {exc}")


@dataclass
class EventStream:
    """A pending SSE response: follow `record` from event `position`."""

    record: Record
    position: int


def _control_script(server: FakeUpstream, body: Any) -> dict[str, Any]:
    items = body if isinstance(body, list) else body.get("items") or []
    if isinstance(body, dict):
        items += [body["name"]] if "name" in body else []
        items += body.get("names", [])
        items += [body["events"]] if "events" in body else []
        items += [body["interaction"]] if "interaction" in body else []
        if "long_text" in body:
            items.append(tr.long_text(int(body["long_text"])))
    server.script(*items)
    return {"queued": len(server._scripts)}


def _control_fault(server: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    server.fault(body.pop("kind"), **body)
    return {"faults": len(server._faults)}


def _control_config(server: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    return dataclasses.asdict(server.configure(**body))


def _control_reset(server: FakeUpstream, body: Any) -> dict[str, Any]:
    server.reset()
    return {}


def _control_clear_requests(server: FakeUpstream, body: Any) -> dict[str, Any]:
    server.clear_requests()
    return {}


CONTROL = {
    ("GET", "health"): lambda s, b: {"ok": True, "base_url": s.base_url},
    ("GET", "config"): lambda s, b: dataclasses.asdict(s.config),
    ("POST", "config"): _control_config,
    ("POST", "script"): _control_script,
    ("POST", "fault"): _control_fault,
    ("GET", "requests"): lambda s, b: {"requests": [r.to_dict() for r in s.requests]},
    ("DELETE", "requests"): _control_clear_requests,
    ("GET", "interactions"): lambda s, b: {k: r.resource(timeline=True)
                                           for k, r in s.interactions.items()},
    ("POST", "reset"): _control_reset,
}
