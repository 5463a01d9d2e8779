"""The websocket protocol in code (docs/websocket.md is its prose): group names, the
channel-layer envelope, and the frames the server sends."""

import json
import uuid
from collections.abc import Iterator

from . import selectors
from .models import Conversation

# Frames are serialized once and relayed verbatim by every socket.
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# daphne refuses to send a websocket message over 1 MiB (and closes the socket with 1011):
# a snapshot is cut into frames of at most this many bytes of UTF-8.
SNAPSHOT_FRAME_BYTES = 512 * 1024


def group_name(conversation_id: uuid.UUID | str) -> str:
    """The group every socket of a conversation listens on."""
    return f"conv.{uuid.UUID(str(conversation_id)).hex}"


def runners_group_name(conversation_id: uuid.UUID | str) -> str:
    """The group the processes running a conversation's turns listen on (stop, sync)."""
    return f"{group_name(conversation_id)}.runners"


def envelope(frame: dict | str) -> dict:
    """The channel-layer message that carries a frame (or its serialized text) to sockets."""
    return {"type": "turn.frame", "text": frame if isinstance(frame, str) else dumps(frame)}


def conversation_updated(conversation: Conversation) -> dict:
    return {"type": "conversation.updated",
            "conversation": selectors.conversation_to_dict(conversation)}


def turn_created(turn) -> dict:
    return {"type": "turn.created", "turn": selectors.turn_to_dict(turn)}


def turn_update(turn_id: str, seq: int, ops: list, fields: dict) -> str:
    """A running turn's numbered change: step ops, and the live fields that changed."""
    return dumps({"type": "turn.update", "turn_id": turn_id, "seq": seq, "ops": ops, **fields})


def snapshot_frames(conversation: dict, turns: list[dict],
                    limit: int = SNAPSHOT_FRAME_BYTES) -> Iterator[str]:
    """What a socket gets on connect: the conversation and the newest turns of the branch
    on screen."""
    return turn_frames("snapshot", {"conversation": conversation}, turns, limit)


def turn_frames(kind: str, head: dict, turns: list[dict],
                limit: int = SNAPSHOT_FRAME_BYTES) -> Iterator[str]:
    """`{"type": kind, **head, "turns": [...]}` as serialized frames of at most `limit` bytes
    each (a turn larger than that goes alone): the first of type `kind`, the rest of type
    `kind + ".part"` with more turns; the last says `"complete": true`. Each turn is
    serialized once."""
    opening = dumps({"type": kind, **head})[:-1] + ',"turns":['
    following = dumps({"type": f"{kind}.part"})[:-1] + ',"turns":['
    batch: list[str] = []
    size = len(opening.encode())
    for turn in turns:
        text = dumps(turn)
        cost = len(text.encode()) + 1  # and its comma
        if batch and size + cost + len(_CLOSING[False]) > limit:
            yield opening + ",".join(batch) + _CLOSING[False]
            opening, batch = following, []
            size = len(opening.encode())
        batch.append(text)
        size += cost
    yield opening + ",".join(batch) + _CLOSING[True]


_CLOSING = {False: '],"complete":false}', True: '],"complete":true}'}
