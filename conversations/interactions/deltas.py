"""The `delta` objects of `step.delta` events, one wrapper per delta type."""

from __future__ import annotations

from typing import Any

from .steps import SERVER_TOOLS
from .wrappers import RawWrapper, field, pick


class Delta(RawWrapper):
    __slots__ = ()
    type = field("type")


class TextDelta(Delta):
    __slots__ = ()
    text = field("text")


class TextAnnotationDelta(Delta):
    __slots__ = ()
    annotations = field("annotations")


class MediaDelta(Delta):
    """A new image/audio/video/document block."""

    __slots__ = ()
    data = field("data")
    uri = field("uri")
    mime_type = field("mime_type")


class ThoughtSummaryDelta(Delta):
    __slots__ = ()
    content = field("content")


class ThoughtSignatureDelta(Delta):
    __slots__ = ()
    signature = field("signature")


class ArgumentsDelta(Delta):
    """A fragment of a call's JSON arguments (`arguments`, or legacy `partial_arguments`)."""

    __slots__ = ()

    @property
    def fragment(self) -> Any:
        raw = self.raw
        return raw["arguments"] if "arguments" in raw else raw.get("partial_arguments")


class ToolDelta(Delta):
    """Fields of a call/result step (`arguments`, `result`, `signature`, `is_error`...)."""

    __slots__ = ()
    arguments = field("arguments")
    result = field("result")
    signature = field("signature")
    is_error = field("is_error")


class UnknownDelta(Delta):
    __slots__ = ()


DELTA_TYPES: dict[str, type[Delta]] = {
    "text": TextDelta,
    "text_annotation_delta": TextAnnotationDelta,
    "image": MediaDelta,
    "audio": MediaDelta,
    "video": MediaDelta,
    "document": MediaDelta,
    "thought_summary": ThoughtSummaryDelta,
    "thought_signature": ThoughtSignatureDelta,
    "arguments_delta": ArgumentsDelta,
    "arguments": ArgumentsDelta,  # older form, with `partial_arguments`
    "function_result": ToolDelta,
    **{f"{tool}_call": ToolDelta for tool in SERVER_TOOLS},
    **{f"{tool}_result": ToolDelta for tool in SERVER_TOOLS},
}


def delta_type(d: dict[str, Any]) -> str | None:
    """The delta's `type`, or `"text"` for an untyped delta carrying `text` (protocol 14.5)."""
    t = d.get("type")
    if t is None and "text" in d:
        return "text"
    return t


def parse_delta(d: dict[str, Any]) -> Delta:
    return pick(DELTA_TYPES, delta_type(d), UnknownDelta)(d)
