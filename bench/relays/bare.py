"""The floor: httpx-sse in, `websockets` out, no Django. One websocket message per delta.

    python -m bench.relays.bare --port 8001 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

from websockets.asyncio.server import ServerConnection, serve

from bench.relays.common import SNAPSHOT, end_frame, text_deltas, text_frame, upstream_client


async def relay_turn(ws: ServerConnection, http, upstream: str, text: str) -> None:
    turn_id, seq = str(uuid.uuid4()), 0
    async for delta in text_deltas(http, upstream, text):
        seq += 1
        await ws.send(text_frame(turn_id, seq, delta))
    await ws.send(end_frame(turn_id, seq + 1))


async def main(port: int, upstream: str) -> None:
    http = upstream_client()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(SNAPSHOT)
        async for message in ws:
            frame = json.loads(message)
            if frame.get("type") == "send":
                await relay_turn(ws, http, upstream, frame["text"])

    # No permessage-deflate: daphne does not compress either.
    async with serve(handler, "127.0.0.1", port, compression=None, backlog=1024):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake upstream's base URL")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.upstream))
