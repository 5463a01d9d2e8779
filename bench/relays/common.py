"""What the bench relays share: the upstream stream, the frames they send, a daphne runner.

The bare and naive relays speak the subset of docs/websocket.md the benchmark client reads:
a `snapshot` on connect, then for the one `send` a `turn.update` per delta with a single
`["text", 0, 0, text]` op and a last frame with `status: "completed"`. Same wire format as
chatsite, so the comparison is about relaying, not about what is on the wire.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
from httpx_sse import aconnect_sse

API_KEY = "test-key"
MODEL = "gemini-3.5-flash"
SNAPSHOT = json.dumps({"type": "snapshot", "turns": []})

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def upstream_client() -> httpx.AsyncClient:
    """One pool per relay process, unbounded: httpx's default of 100 connections would queue
    streams 101+ behind the first hundred."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        timeout=httpx.Timeout(10.0, read=300.0))


async def text_deltas(http: httpx.AsyncClient, base_url: str, text: str) -> AsyncIterator[str]:
    """The text of every text delta of one streaming create, as it arrives."""
    body = {"model": MODEL, "input": text, "stream": True}
    headers = {"x-goog-api-key": API_KEY}
    async with aconnect_sse(http, "POST", f"{base_url}/v1beta/interactions", json=body,
                            headers=headers) as source:
        async for sse in source.aiter_sse():
            event = json.loads(sse.data)
            if event.get("event_type") == "step.delta":
                delta = event.get("delta") or {}
                if delta.get("type", "text") == "text" and "text" in delta:
                    yield delta["text"]


def text_frame(turn_id: str, seq: int, text: str) -> str:
    return dumps({"type": "turn.update", "turn_id": turn_id, "seq": seq,
                  "ops": [["text", 0, 0, text]]})


def end_frame(turn_id: str, seq: int, status: str = "completed") -> str:
    return dumps({"type": "turn.update", "turn_id": turn_id, "seq": seq, "ops": [],
                  "status": status})


def serve_daphne(application: Callable, port: int) -> None:
    """Serve an ASGI app with daphne in this process, as the `daphne` command would.

    Access logging is off (the command logs each connection, not each frame, at -v1).
    """
    from daphne.server import Server  # installs Twisted's asyncio reactor: import late

    Server(application, endpoints=[f"tcp:port={port}:interface=127.0.0.1"],
           verbosity=0).run()
