"""The naive Channels relay: one group_send and one frame per delta, stock everything.

Stock `InMemoryChannelLayer` (only `capacity` raised from 100 to 10,000, so that the
comparison is about CPU and latency rather than dropped messages) and stock
`AsyncConsumer.dispatch` (a thread hop to close old database connections before every
handler). Served by daphne in this process.

    python -m bench.relays.naive --port 8002 --upstream http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["channels"],
    CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                "CONFIG": {"capacity": 10000}}},
)
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402

from bench.relays.common import (  # noqa: E402
    SNAPSHOT,
    end_frame,
    serve_daphne,
    text_deltas,
    text_frame,
    upstream_client,
)

UPSTREAM = ""
_http = None


async def relay_turn(group: str, text: str) -> None:
    global _http
    _http = _http or upstream_client()  # created on daphne's loop
    layer, turn_id, seq = get_channel_layer(), str(uuid.uuid4()), 0
    async for delta in text_deltas(_http, UPSTREAM, text):
        seq += 1
        await layer.group_send(group, {"type": "relay.frame", "text": text_frame(turn_id, seq,
                                                                                  delta)})
    await layer.group_send(group, {"type": "relay.frame", "text": end_frame(turn_id, seq + 1)})


class RelayConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"conv.{uuid.uuid4().hex}"  # one group per conversation, as in chatsite
        self.tasks: set[asyncio.Task] = set()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=SNAPSHOT)

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        frame = json.loads(text_data or "{}")
        if frame.get("type") == "send":
            task = asyncio.create_task(relay_turn(self.group, frame["text"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def relay_frame(self, message: dict) -> None:
        await self.send(text_data=message["text"])


application = ProtocolTypeRouter({"websocket": RelayConsumer.as_asgi()})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake upstream's base URL")
    args = parser.parse_args()
    UPSTREAM = args.upstream
    serve_daphne(application, args.port)
