"""Async HTTP client for the Gemini Interactions API, on httpx.AsyncClient.

Retries (408/409/429/5xx and connection errors, exponential backoff with jitter, Retry-After
honoured) happen only before the first byte of a successful response, so a generation is never
started twice. A stream that drops later is resumed with
`GET interactions/{id}?stream=true&last_event_id=...`, and the consumer still sees every event
exactly once. In-band `error` events are yielded like any other event, never raised: feed them
to an `Assembler` (which records `.error`) or raise `StreamError.from_error(event.error)`.

SSE framing is done by `sse.SSEDecoder`, which is tested against httpx-sse's decoder but
splits whole chunks instead of decoding line by line: bench/bench_stream.py measured parse +
assemble on top of httpx-sse's `aiter_sse` at about +22% CPU over plain httpx-sse iteration,
and this client at about +11%. The stream loop's bookkeeping and payload decoding are in
`stream`; when a continuation hop follows, and how hops merge, in `continuation`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from . import files
from .continuation import continues, merge_interactions, next_hop_body
from .errors import APIError, ConnectionFailed, InteractionsError
from .events import EVENT_TYPES, Event, StepDelta, parse_event
from .interaction import Interaction
from .retry import RetryPolicy
from .sse import SSEDecoder
from .stream import Hop, Malformed, decode, describe, events_of, interrupted

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_REVISION = "2026-05-20"
# Connect fast, but let a thinking model be silent for minutes before the first token.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=10.0)
JSON = "application/json"
SSE = "text/event-stream"

Opener = Callable[[], Awaitable[httpx.Response]]

POOL_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=100)


class InteractionsClient:
    """Create, stream, get, cancel and delete interactions; upload files."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = "v1beta",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 4,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        max_resumes: int = 5,
        max_hops: int = 50,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.max_resumes = max_resumes  # resumes in a row that bring nothing new
        self.max_hops = max_hops  # continuation hops per create
        # Every streaming reply holds a connection for its whole length: httpx's default
        # pool of 100 would queue the 101st conversation behind the others.
        self._http = http or httpx.AsyncClient(timeout=timeout, limits=POOL_LIMITS)
        self._owns_http = http is None
        self._headers = {
            "x-goog-api-key": api_key.strip(),
            "Api-Revision": API_REVISION,
            "Content-Type": JSON,
        }

    async def __aenter__(self) -> InteractionsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def url(self, path: str, *, upload: bool = False) -> str:
        """`{base}/{version}{path}` (or `{base}/upload/{version}{path}`)."""
        prefix = "/upload/" if upload else "/"
        return f"{self.base_url}{prefix}{self.api_version}{path}"

    # ------------------------------------------------------------------ transport

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        content: bytes | AsyncIterable[memoryview] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        accept: str = JSON,
        auth: bool = True,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with retries; returns a 2xx response (unread when `stream`), else raises."""
        all_headers = dict(self._headers) if auth else {
            k: v for k, v in self._headers.items() if k != "x-goog-api-key"}
        all_headers["Accept"] = accept
        all_headers.update(headers or {})
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
        attempt = 0
        while True:
            request = self._http.build_request(
                method, url, content=content, params=params, headers=all_headers,
                timeout=self.timeout)
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                failure = _connection_failed(exc)
                delay = self.retry.delay(attempt, None) if _may_retry(method, exc) else None
                if delay is None:
                    raise failure from exc
            else:
                if response.is_success:
                    return response
                await response.aread()
                await response.aclose()
                failure = APIError.from_response(response)
                delay = (self.retry.delay(attempt, failure.retry_after)
                         if failure.retryable else None)
                if delay is None:
                    raise failure
            await asyncio.sleep(delay)
            attempt += 1

    async def request_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.request(method, self.url(path), **kwargs)
        try:
            data = response.json() if response.content else {}
        except ValueError as exc:
            raise InteractionsError(
                f"The Gemini API sent an unreadable answer: {response.text[:200]!r}") from exc
        return data if isinstance(data, dict) else {"value": data}

    # ------------------------------------------------------------------ interactions

    async def create(self, body: dict[str, Any]) -> Interaction:
        """Create (non-streaming); continuation hops are followed and merged into one result."""
        body = {k: v for k, v in body.items() if k != "stream"}
        hops = [await self.request_json("POST", "/interactions", body=body)]
        while len(hops) < self.max_hops and continues(body, hops[-1].get("status"),
                                                      hops[-1].get("continuation_token")):
            body = next_hop_body(body, hops[-1].get("id"), hops[-1]["continuation_token"])
            hops.append(await self.request_json("POST", "/interactions", body=body))
        merged = hops[0] if len(hops) == 1 else merge_interactions(hops)
        return Interaction(merged, [h.get("id") for h in hops if h.get("id")])

    async def get(self, interaction_id: str, include_input: bool = False) -> Interaction:
        params = {"stream": "false"}
        if include_input:
            params["include_input"] = "true"
        return Interaction(await self.request_json("GET", f"/interactions/{interaction_id}",
                                            params=params))

    async def cancel(self, interaction_id: str) -> Interaction:
        path = f"/interactions/{interaction_id}/cancel"
        return Interaction(await self.request_json("POST", path))

    async def delete(self, interaction_id: str) -> None:
        await self.request_json("DELETE", f"/interactions/{interaction_id}")

    def stream(self, body: dict[str, Any]) -> AsyncIterator[Event]:
        """Streaming create: every event of every continuation hop, exactly once, in order."""
        body = {**body, "stream": True}
        opener = self._opener("POST", self.url("/interactions"), body)
        return self._events(Hop(), opener, body)

    def get_stream(self, interaction_id: str, last_event_id: str | None = None
                   ) -> AsyncIterator[Event]:
        """Replay (or follow) a stored interaction's stream, after `last_event_id` if given."""
        hop = Hop(interaction_id, last_event_id)
        return self._events(hop, self._resume_opener(hop), None)

    def _opener(self, method: str, url: str, body: Any = None,
                params: dict[str, str] | None = None) -> Opener:
        return lambda: self.request(method, url, body=body, params=params, accept=SSE,
                                    stream=True)

    def _resume_opener(self, hop: Hop) -> Opener:
        params = {"stream": "true"}
        if hop.last_event_id is not None:
            params["last_event_id"] = hop.last_event_id
        return self._opener("GET", self.url(f"/interactions/{hop.interaction_id}"),
                            params=params)

    async def _events(self, hop: Hop, opener: Opener, body: dict[str, Any] | None
                      ) -> AsyncIterator[Event]:
        """The hot loop: read, frame, decode, resume after drops, follow continuation hops.

        `body` is the create body (None for a plain GET stream, which has no hops to follow).
        After a drop the stream is reopened with GET ?last_event_id=; replayed events that
        were already yielded are skipped by position, since ids are sparse.
        """
        event_types = EVENT_TYPES
        replay_pos: int | None = None  # while skipping a replay: yielded events re-seen so far
        stalled = 0  # resumes in a row that brought nothing new
        hops = 1
        while True:
            count_before = hop.count
            response = await self._open(opener, hop, resuming=replay_pos is not None)
            decoder = SSEDecoder()
            reason = "the stream ended before interaction.completed"
            try:
                if not response.headers.get("content-type", "").startswith(SSE):
                    await response.aread()  # a JSON answer to a streaming request
                    for event in events_of(response.json()):
                        hop.observe(event)
                        yield event
                    return
                async for chunk in response.aiter_bytes():
                    for data in decoder.feed(chunk):
                        if not data:
                            continue  # an empty `data:`: nothing to decode
                        if data == b"[DONE]":
                            hop.done = True
                            break
                        raw = decode(data)
                        event_id = raw.get("event_id")
                        if replay_pos is not None:
                            if event_id is not None and event_id in hop.ids:
                                replay_pos = hop.ids[event_id]
                                continue
                            if event_id is None and replay_pos < hop.count:
                                replay_pos += 1
                                continue
                            replay_pos = None
                        try:
                            cls = event_types.get(raw.get("event_type"))
                        except TypeError:  # an unhashable event_type: parse_event copes
                            cls = None
                        event = cls(raw) if cls is not None else parse_event(raw)
                        if cls is not StepDelta:
                            hop.observe(event)
                        hop.count += 1
                        if event_id is not None:
                            hop.ids[event_id] = hop.count
                            hop.last_event_id = event_id
                        yield event
                        if hop.done:
                            break
                    if hop.done:
                        break
            except (httpx.TransportError, Malformed) as exc:
                reason = describe(exc)
            finally:
                await response.aclose()
            if hop.done:
                if body is None or hops >= self.max_hops or not continues(
                        body, hop.status, hop.token):
                    return
                body = next_hop_body(body, hop.interaction_id, hop.token)  # type: ignore[arg-type]
                hop, hops, replay_pos, stalled = Hop(), hops + 1, None, 0
                opener = self._opener("POST", self.url("/interactions"), body)
                continue
            stalled = 0 if hop.count > count_before else stalled + 1
            self._check_resumable(hop, reason, stalled, body)
            await asyncio.sleep(self.retry.backoff(stalled))
            replay_pos = hop.ids.get(hop.last_event_id, 0) if hop.last_event_id else 0
            opener = self._resume_opener(hop)

    async def _open(self, opener: Opener, hop: Hop, *, resuming: bool) -> httpx.Response:
        try:
            return await opener()
        except InteractionsError as exc:
            if not resuming:
                raise
            raise interrupted(hop, f"resuming failed: {exc.message}") from exc

    def _check_resumable(self, hop: Hop, reason: str, stalled: int,
                         body: dict[str, Any] | None) -> None:
        """Raise StreamInterrupted when a dropped stream cannot (or may no longer) be resumed."""
        if body is not None and body.get("store") is False:
            raise interrupted(hop, f"{reason}, and store=false leaves nothing to resume")
        if not hop.interaction_id:
            raise interrupted(hop, f"{reason} before the interaction had an id")
        if stalled >= self.max_resumes:
            raise interrupted(hop, f"{reason}; gave up after {self.max_resumes} resumes")

    # ------------------------------------------------------------------ files

    async def upload_file(self, source: files.Source, *, mime_type: str,
                          display_name: str | None = None, chunk_size: int = files.CHUNK_SIZE,
                          wait: bool = False, progress: files.Progress | None = None
                          ) -> dict[str, Any]:
        return await files.upload_file(self, source, mime_type=mime_type,
                                       display_name=display_name, chunk_size=chunk_size,
                                       wait=wait, progress=progress)

    async def get_file(self, name: str) -> dict[str, Any]:
        return await files.get_file(self, name)

    async def delete_file(self, name: str) -> None:
        await files.delete_file(self, name)

    async def wait_until_active(self, name: str, timeout: float = 300.0,
                                interval: float = 1.0, max_interval: float = 10.0,
                                on_poll: Callable[[dict[str, Any]], None] | None = None
                                ) -> dict[str, Any]:
        return await files.wait_until_active(self, name, timeout=timeout, interval=interval,
                                             max_interval=max_interval, on_poll=on_poll)


# ---------------------------------------------------------------------- request helpers


def _may_retry(method: str, exc: httpx.TransportError) -> bool:
    # A create whose request went out and then timed out may be generating: never send it twice.
    return not (method == "POST" and isinstance(exc, httpx.ReadTimeout))


def _connection_failed(exc: httpx.TransportError) -> ConnectionFailed:
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(f"The Gemini API did not answer in time ({type(exc).__name__}).")
    return ConnectionFailed(
        f"Could not reach the Gemini API ({type(exc).__name__}: {exc or 'no details'}).")
