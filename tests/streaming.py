"""Helpers for tests that talk to the conversation websocket."""

import json
from contextlib import asynccontextmanager

from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from conversations.routing import websocket_urlpatterns
from devtools.screen import FINAL, apply_ops, text_of  # noqa: F401 (tests import them from here)

router = URLRouter(websocket_urlpatterns)


def signed_in_session(user):
    """A session that signs `user` in, as logging in would leave it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    if user.is_authenticated:
        session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                        BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
        session.create()
    return session


@asynccontextmanager
async def socket(user, conversation, *, snapshot: bool = True, session=None):
    """A connected communicator (user and session put in scope as the auth middleware would)."""
    communicator = WebsocketCommunicator(router, f"/ws/conversations/{conversation.pk}/")
    communicator.scope["user"] = user
    communicator.scope["session"] = session or await sync_to_async(signed_in_session)(user)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    try:
        if snapshot:
            first = await communicator.receive_json_from(timeout=5)
            assert first["type"] == "snapshot"
            communicator.snapshot = first
        yield communicator
    finally:
        await communicator.disconnect()


async def send(communicator, **frame) -> None:
    await communicator.send_to(text_data=json.dumps(frame))


async def frames_until_done(communicator, timeout: float = 20) -> list[dict]:
    """Frames up to and including the one that ends a turn."""
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] == "turn.update" and frame.get("status") in FINAL:
            return frames


def replay(frames: list[dict], turn_id: str, *, steps=None, seq: int = 0) -> tuple[list, int]:
    """Fold a turn's update frames into steps, checking sequence numbers have no gap."""
    steps = [] if steps is None else steps
    for frame in frames:
        if frame["type"] != "turn.update" or frame["turn_id"] != turn_id:
            continue
        if frame["seq"] <= seq:
            continue
        assert frame["seq"] == seq + 1, f"gap: frame {frame['seq']} after {seq}"
        apply_ops(steps, frame["ops"])
        seq = frame["seq"]
    return steps, seq
