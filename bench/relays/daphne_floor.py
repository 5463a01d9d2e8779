"""The daphne floor: the bare relay's work as a raw ASGI app under daphne. No Django, no
Channels: what serving websockets with daphne (Twisted + Autobahn) costs by itself, the
part of chatsite's CPU that no change to chatsite can remove.

    python -m bench.relays.daphne_floor --port 8004 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

from bench.relays.common import (
    SNAPSHOT,
    end_frame,
    serve_daphne,
    text_deltas,
    text_frame,
    upstream_client,
)

UPSTREAM = ""
_http = None


async def relay_turn(send, text: str) -> None:
    global _http
    _http = _http or upstream_client()  # created on daphne's loop
    turn_id, seq = str(uuid.uuid4()), 0
    async for delta in text_deltas(_http, UPSTREAM, text):
        seq += 1
        await send({"type": "websocket.send", "text": text_frame(turn_id, seq, delta)})
    await send({"type": "websocket.send", "text": end_frame(turn_id, seq + 1)})


async def application(scope, receive, send) -> None:
    if scope["type"] != "websocket":
        return
    tasks: set[asyncio.Task] = set()
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": SNAPSHOT})
        elif message["type"] == "websocket.receive":
            frame = json.loads(message.get("text") or "{}")
            if frame.get("type") == "send":
                task = asyncio.create_task(relay_turn(send, frame["text"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        elif message["type"] == "websocket.disconnect":
            return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake upstream's base URL")
    args = parser.parse_args()
    UPSTREAM = args.upstream
    serve_daphne(application, args.port)
