"""What the client's stream loop (`InteractionsClient._events`) keeps and decodes.

`Hop` is the bookkeeping of one interaction's stream (ids to resume from, events yielded);
`decode` turns one SSE `data` payload into its JSON object; `events_of` gives the events a
JSON answer to a streaming request stands for; `describe` and `interrupted` word a drop.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from .errors import StreamInterrupted
from .events import (
    ErrorEvent,
    Event,
    InteractionCompleted,
    InteractionCreated,
    InteractionStatusUpdate,
    parse_event,
)


class Malformed(Exception):
    """A `data:` payload that is not a JSON object: treated like a dropped connection."""


class Hop:
    """Bookkeeping of one interaction's stream: ids for resuming and what was yielded."""

    __slots__ = ("interaction_id", "status", "token", "done", "last_event_id", "count", "ids")

    def __init__(self, interaction_id: str | None = None, last_event_id: str | None = None):
        self.interaction_id = interaction_id
        self.status: str | None = None
        self.token: str | None = None
        self.done = False  # completed, error or [DONE]: a later EOF is not a drop
        self.last_event_id = last_event_id
        self.count = 0  # events yielded
        self.ids: dict[str, int] = {}  # event_id -> number of events yielded up to it

    def observe(self, event: Event) -> None:
        """Track the lifecycle fields of a non-delta event."""
        cls = type(event)
        if cls is InteractionCreated:
            self.interaction_id = event.interaction_id or self.interaction_id
            self.status = event.status
        elif isinstance(event, InteractionStatusUpdate):
            self.interaction_id = self.interaction_id or event.interaction_id
            self.status = event.status or self.status
        elif cls is InteractionCompleted and isinstance(event.raw.get("interaction"), dict):
            self.interaction_id = event.interaction_id or self.interaction_id
            self.status = event.status
            self.token = event.continuation_token
            self.done = True
        elif cls is ErrorEvent:
            self.done = True


_scan = json.JSONDecoder().scan_once


def decode(data: bytes) -> dict[str, Any]:
    """One event's JSON object; raises Malformed for anything else."""
    text = data.decode(errors="replace")
    try:
        # The C scanner straight away: json.loads adds encoding sniffing and regex calls.
        raw, end = _scan(text, 0)
        if end != len(text) and text[end:].strip():
            raise ValueError("extra data")
    except (StopIteration, ValueError):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise Malformed(text[:120]) from exc
    if type(raw) is not dict:
        raise Malformed(text[:120])
    return raw


def events_of(interaction: dict[str, Any]) -> list[Event]:
    """The events a stream of this (already complete) Interaction would have carried."""
    head = {k: v for k, v in interaction.items() if k != "steps"}
    raws: list[dict[str, Any]] = [{"event_type": "interaction.created", "interaction": head}]
    for index, step in enumerate(interaction.get("steps") or ()):
        raws.append({"event_type": "step.start", "index": index, "step": step})
        raws.append({"event_type": "step.stop", "index": index})
    raws.append({"event_type": "interaction.completed", "interaction": head})
    return [parse_event(r) for r in raws]


def describe(exc: BaseException) -> str:
    if isinstance(exc, Malformed):
        return f"the stream sent a malformed event ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        return "the stream went silent (read timeout)"
    return f"the connection dropped ({type(exc).__name__}: {exc or 'no details'})"


def interrupted(hop: Hop, reason: str) -> StreamInterrupted:
    return StreamInterrupted(
        f"The reply was interrupted: {reason}.",
        interaction_id=hop.interaction_id,
        last_event_id=hop.last_event_id,
    )
