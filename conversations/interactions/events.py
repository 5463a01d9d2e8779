"""Typed, thin wrappers over the raw JSON of the Interactions API (events, steps, content).

Every wrapper keeps the dict it was built from in `.raw` and `to_dict()` returns that very dict,
so unknown fields and unknown types survive a round trip untouched. Dispatch is by table lookup
on `event_type` / `type`; anything unknown becomes an `Unknown*` wrapper, never an error.
"""

from __future__ import annotations

from typing import Any

# Statuses the legacy event names stand for (protocol section 14.4).
LEGACY_STATUS_EVENTS = {
    "interaction.in_progress": "in_progress",
    "interaction.requires_action": "requires_action",
}


def _pick(table: dict[str, Any], key: Any, default: Any) -> Any:
    """`table[key]`, or `default` for an unknown (or not even hashable) key."""
    try:
        return table.get(key, default)
    except TypeError:
        return default


def _field(name: str) -> property:
    """A read-only property returning `raw[name]` (or None)."""
    return property(lambda self: self.raw.get(name), doc=f"The raw `{name}` field.")


class RawWrapper:
    """Base: holds the raw dict; equality and serialisation go through it."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def to_dict(self) -> dict[str, Any]:
        return self.raw

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.raw == self.raw  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"


# --------------------------------------------------------------------------- annotations


class Annotation(RawWrapper):
    """A citation or markup span on a text block; indexes are UTF-8 byte offsets."""

    __slots__ = ()
    type = _field("type")
    start_index = _field("start_index")
    end_index = _field("end_index")

    def span(self, text: str) -> str:
        """The annotated part of `text` (offsets count bytes, not characters)."""
        encoded = text.encode()
        start = self.start_index or 0
        end = len(encoded) if self.end_index is None else self.end_index
        return encoded[start:end].decode(errors="replace")


class UrlCitation(Annotation):
    __slots__ = ()
    url = _field("url")
    title = _field("title")


class FileCitation(Annotation):
    __slots__ = ()
    document_uri = _field("document_uri")
    file_name = _field("file_name")
    source = _field("source")
    page_number = _field("page_number")


class PlaceCitation(Annotation):
    __slots__ = ()
    place_id = _field("place_id")
    name = _field("name")
    url = _field("url")


class SpeechMetadata(Annotation):
    __slots__ = ()
    speaker = _field("speaker")
    style = _field("style")


class WordInfo(Annotation):
    __slots__ = ()
    text = _field("text")
    speaker = _field("speaker")


class UnknownAnnotation(Annotation):
    __slots__ = ()


ANNOTATION_TYPES: dict[str, type[Annotation]] = {
    "url_citation": UrlCitation,
    "file_citation": FileCitation,
    "place_citation": PlaceCitation,
    "speech_metadata": SpeechMetadata,
    "word_info": WordInfo,
}


def parse_annotation(d: dict[str, Any]) -> Annotation:
    return _pick(ANNOTATION_TYPES, d.get("type"), UnknownAnnotation)(d)


# --------------------------------------------------------------------------- content


class Content(RawWrapper):
    __slots__ = ()
    type = _field("type")


class TextContent(Content):
    __slots__ = ()

    @property
    def text(self) -> str:
        return self.raw.get("text") or ""

    @property
    def annotations(self) -> list[Annotation]:
        return [parse_annotation(a) for a in self.raw.get("annotations") or ()]


class MediaContent(Content):
    """Image, audio, video or document: inline base64 `data` or a `uri`."""

    __slots__ = ()
    data = _field("data")
    uri = _field("uri")
    mime_type = _field("mime_type")


class ImageContent(MediaContent):
    __slots__ = ()


class AudioContent(MediaContent):
    __slots__ = ()


class VideoContent(MediaContent):
    __slots__ = ()


class DocumentContent(MediaContent):
    __slots__ = ()


class UnknownContent(Content):
    __slots__ = ()


CONTENT_TYPES: dict[str, type[Content]] = {
    "text": TextContent,
    "image": ImageContent,
    "audio": AudioContent,
    "video": VideoContent,
    "document": DocumentContent,
}


def parse_content(d: dict[str, Any]) -> Content:
    return _pick(CONTENT_TYPES, d.get("type"), UnknownContent)(d)


def _content_list(value: Any) -> list[Content]:
    # REST samples send user_input content as a plain string (protocol 13.9).
    if isinstance(value, str):
        return [TextContent({"type": "text", "text": value})]
    if isinstance(value, dict):
        return [parse_content(value)]
    return [parse_content(c) for c in value or ()]


# --------------------------------------------------------------------------- steps


class Step(RawWrapper):
    __slots__ = ()
    type = _field("type")
    signature = _field("signature")


class UserInputStep(Step):
    __slots__ = ()

    @property
    def content(self) -> list[Content]:
        return _content_list(self.raw.get("content"))


class ModelOutputStep(UserInputStep):
    __slots__ = ()
    error = _field("error")


class ThoughtStep(Step):
    __slots__ = ()

    @property
    def summary(self) -> list[Content]:
        return _content_list(self.raw.get("summary"))


class CallStep(Step):
    """A call the model made: a client `function_call` or a server tool call."""

    __slots__ = ()
    id = _field("id")
    name = _field("name")
    server_name = _field("server_name")
    arguments = _field("arguments")


class FunctionCallStep(CallStep):
    __slots__ = ()


class ResultStep(Step):
    """The answer to a call, linked by `call_id`."""

    __slots__ = ()
    call_id = _field("call_id")
    result = _field("result")
    name = _field("name")
    is_error = _field("is_error")


class FunctionResultStep(ResultStep):
    __slots__ = ()


class UnknownStep(Step):
    __slots__ = ()


# Server-side tools come in call/result pairs with the same shape.
SERVER_TOOLS = (
    "code_execution",
    "url_context",
    "google_search",
    "google_maps",
    "file_search",
    "mcp_server_tool",
    "retrieval",
    "processing",
)

STEP_TYPES: dict[str, type[Step]] = {
    "user_input": UserInputStep,
    "model_output": ModelOutputStep,
    "thought": ThoughtStep,
    "function_call": FunctionCallStep,
    "function_result": FunctionResultStep,
    **{f"{tool}_call": CallStep for tool in SERVER_TOOLS},
    **{f"{tool}_result": ResultStep for tool in SERVER_TOOLS},
}


def parse_step(d: dict[str, Any]) -> Step:
    return _pick(STEP_TYPES, d.get("type"), UnknownStep)(d)


# --------------------------------------------------------------------------- deltas


class Delta(RawWrapper):
    __slots__ = ()
    type = _field("type")


class TextDelta(Delta):
    __slots__ = ()
    text = _field("text")


class TextAnnotationDelta(Delta):
    __slots__ = ()
    annotations = _field("annotations")


class MediaDelta(Delta):
    """A new image/audio/video/document block."""

    __slots__ = ()
    data = _field("data")
    uri = _field("uri")
    mime_type = _field("mime_type")


class ThoughtSummaryDelta(Delta):
    __slots__ = ()
    content = _field("content")


class ThoughtSignatureDelta(Delta):
    __slots__ = ()
    signature = _field("signature")


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
    arguments = _field("arguments")
    result = _field("result")
    signature = _field("signature")
    is_error = _field("is_error")


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
    return _pick(DELTA_TYPES, delta_type(d), UnknownDelta)(d)


# --------------------------------------------------------------------------- events


class Event(RawWrapper):
    """One SSE event; `event_type` comes from the JSON, never from the SSE `event:` line."""

    __slots__ = ()
    name = ""  # canonical event_type of the class

    @property
    def event_type(self) -> str | None:
        return self.raw.get("event_type") or self.name or None

    event_id = _field("event_id")


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
    interaction_id = _field("interaction_id")
    status = _field("status")
    continuation_token = _field("continuation_token")
    usage = _field("usage")


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
    index = _field("index")

    @property
    def step(self) -> dict[str, Any]:
        return self.raw.get("step") or {}


class StepDelta(Event):
    __slots__ = ()
    name = "step.delta"
    index = _field("index")

    @property
    def delta(self) -> dict[str, Any]:
        return self.raw.get("delta") or {}

    @property
    def delta_type(self) -> str | None:
        return delta_type(self.delta)


class StepStop(Event):
    __slots__ = ()
    name = "step.stop"
    index = _field("index")
    usage = _field("usage")
    step_usage = _field("step_usage")


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
    cls = _pick(EVENT_TYPES, data.get("event_type"), None)
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


# --------------------------------------------------------------------------- interaction


def output_text(steps: list[dict[str, Any]]) -> str:
    """The SDK's `output_text`: the trailing run of text after the last user input (4.3)."""
    texts: list[str] = []
    started = False
    for step in reversed(steps):
        kind = step.get("type")
        if kind == "user_input":
            break
        if kind == "thought":
            continue
        if kind != "model_output":
            if started:
                break
            continue
        content = step.get("content") or ()
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in reversed(content):
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
                started = True
            elif started:
                return "".join(reversed(texts))
    return "".join(reversed(texts))


def output_block(steps: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """The last `kind` block (image/audio/video) of the model output after the last user input."""
    for step in reversed(steps):
        if step.get("type") == "user_input":
            return None
        if step.get("type") == "model_output":
            for block in reversed(step.get("content") or ()):
                if isinstance(block, dict) and block.get("type") == kind:
                    return block
    return None


class Interaction(RawWrapper):
    """The Interaction resource (create/get/cancel), or a merge of continuation hops."""

    __slots__ = ("continuation_ids",)

    def __init__(self, raw: dict[str, Any], continuation_ids: list[str] | None = None) -> None:
        self.raw = raw
        self.continuation_ids = continuation_ids or ([raw["id"]] if raw.get("id") else [])

    id = _field("id")
    status = _field("status")
    usage = _field("usage")
    continuation_token = _field("continuation_token")
    previous_interaction_id = _field("previous_interaction_id")

    @property
    def step_dicts(self) -> list[dict[str, Any]]:
        return self.raw.get("steps") or []

    @property
    def steps(self) -> list[Step]:
        return [parse_step(s) for s in self.step_dicts]

    @property
    def output_text(self) -> str:
        return output_text(self.step_dicts)

    @property
    def output_image(self) -> dict[str, Any] | None:
        return output_block(self.step_dicts, "image")

    @property
    def output_audio(self) -> dict[str, Any] | None:
        return output_block(self.step_dicts, "audio")

    @property
    def output_video(self) -> dict[str, Any] | None:
        return output_block(self.step_dicts, "video")
