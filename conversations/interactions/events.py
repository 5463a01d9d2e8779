"""The SSE events of a stream, dispatched on their JSON `event_type` (see `wrappers`)."""

from __future__ import annotations

from typing import Any

from .deltas import delta_type
from .wrappers import RawWrapper, field, pick

# Statuses the legacy event names stand for (protocol section 14.4).
LEGACY_STATUS_EVENTS = {
    "interaction.in_progress": "in_progress",
    "interaction.requires_action": "requires_action",
}


class Event(RawWrapper):
    """One SSE event; `event_type` comes from the JSON, never from the SSE `event:` line."""

    __slots__ = ()
    name = ""  # canonical event_type of the class

    @property
    def event_type(self) -> str | None:
        return self.raw.get("event_type") or self.name or None

    event_id = field("event_id")


class _LifecycleEvent(Event):
    """created/completed: a partial Interaction nested under `interaction`."""

    __slots__ = ()

    @property
    def interaction(self) -> dict[str, Any]:
        inter = self.raw.get("interaction")
        return inter if isinstance(inter, dict) else {}

    @property
    def interaction_id(self) -> str | None:
        return self.interaction.get("id")

    @property
    def status(self) -> str | None:
        return self.interaction.get("status")

    @property
    def usage(self) -> dict[str, Any] | None:
        return self.interaction.get("usage")

    @property
    def continuation_token(self) -> str | None:
        return self.interaction.get("continuation_token")


class InteractionCreated(_LifecycleEvent):
    __slots__ = ()
    name = "interaction.created"


class InteractionCompleted(_LifecycleEvent):
    __slots__ = ()
    name = "interaction.completed"


class InteractionStatusUpdate(Event):
    """Flat: `interaction_id`, `status`, maybe a checkpoint `continuation_token` and `usage`."""

    __slots__ = ()
    name = "interaction.status_update"
    interaction_id = field("interaction_id")
    status = field("status")
    continuation_token = field("continuation_token")
    usage = field("usage")


class LegacyStatusEvent(InteractionStatusUpdate):
    """`interaction.in_progress` / `interaction.requires_action`: the status is the name."""

    __slots__ = ()

    @property
    def interaction_id(self) -> str | None:
        raw = self.raw
        return raw.get("interaction_id") or (raw.get("interaction") or {}).get("id")

    @property
    def status(self) -> str | None:
        return LEGACY_STATUS_EVENTS.get(self.raw.get("event_type"), self.raw.get("status"))


class StepStart(Event):
    __slots__ = ()
    name = "step.start"
    index = field("index")

    @property
    def step(self) -> dict[str, Any]:
        return self.raw.get("step") or {}


class StepDelta(Event):
    __slots__ = ()
    name = "step.delta"
    index = field("index")

    @property
    def delta(self) -> dict[str, Any]:
        return self.raw.get("delta") or {}

    @property
    def delta_type(self) -> str | None:
        return delta_type(self.delta)


class StepStop(Event):
    __slots__ = ()
    name = "step.stop"
    index = field("index")
    usage = field("usage")
    step_usage = field("step_usage")


class ErrorEvent(Event):
    """An in-band `error` event; its `code` is usually a string (e.g. "gateway_timeout")."""

    __slots__ = ()
    name = "error"

    @property
    def error(self) -> dict[str, Any]:
        err = self.raw.get("error")
        return err if isinstance(err, dict) else {}

    @property
    def code(self) -> int | str | None:
        return self.error.get("code")

    @property
    def message(self) -> str:
        return self.error.get("message") or ""


class UnknownEvent(Event):
    __slots__ = ()


EVENT_TYPES: dict[str, type[Event]] = {
    "interaction.created": InteractionCreated,
    "interaction.status_update": InteractionStatusUpdate,
    "step.start": StepStart,
    "step.delta": StepDelta,
    "step.stop": StepStop,
    "interaction.completed": InteractionCompleted,
    "error": ErrorEvent,
    # Older names seen in transcripts (protocol 8.2, 14.4).
    "interaction.in_progress": LegacyStatusEvent,
    "interaction.requires_action": LegacyStatusEvent,
    "interaction.start": InteractionCreated,
    "interaction.complete": InteractionCompleted,
}


def parse_event(data: dict[str, Any]) -> Event:
    """Wrap one decoded SSE `data` object in its event class (UnknownEvent if unknown)."""
    cls = pick(EVENT_TYPES, data.get("event_type"), None)
    if cls is None:
        cls = _untyped_event_class(data) if "event_type" not in data else UnknownEvent
    return cls(data)


def _untyped_event_class(data: dict[str, Any]) -> type[Event]:
    # A payload without event_type is only recognisable by its unambiguous fields.
    if "index" in data:
        if "delta" in data:
            return StepDelta
        if "step" in data:
            return StepStart
    return UnknownEvent
