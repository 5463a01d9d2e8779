"""Recorded transcripts: SSE parsing/serialising, folding events into an Interaction, generators.

This is the fake upstream's own, deliberately independent implementation of the folding rules of
protocol section 8.5; it must not import anything from `conversations.interactions`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"  # recorded transcripts

MEDIA_TYPES = frozenset({"image", "audio", "video", "document"})
# Delta types that carry fields of a step of the same name (merged into the step as they arrive).
STEP_FIELD_DELTAS = frozenset({
    "function_result", "code_execution_call", "code_execution_result", "url_context_call",
    "url_context_result", "google_search_call", "google_search_result", "google_maps_call",
    "google_maps_result", "file_search_call", "file_search_result", "mcp_server_tool_call",
    "mcp_server_tool_result", "retrieval_call", "retrieval_result", "processing_call",
    "processing_result",
})
STEP_TYPES = STEP_FIELD_DELTAS | {"user_input", "model_output", "thought", "function_call"}
# Legacy lifecycle names still seen in older transcripts (protocol section 14.4).
LEGACY_STATUS_EVENTS = {"interaction.in_progress": "in_progress",
                        "interaction.requires_action": "requires_action"}
WORD_RE = re.compile(r"\S+\s*|\s+")


@dataclass
class Transcript:
    """A scripted upstream reply: the SSE events plus whether the wire ends with `data: [DONE]`."""

    name: str
    events: list[dict[str, Any]]
    done_marker: bool = False

    def copy(self) -> Transcript:
        return Transcript(self.name, copy.deepcopy(self.events), self.done_marker)


# --- SSE wire format -------------------------------------------------------------------------

def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """Split an SSE body into (event name, joined data) pairs; blocks without data are skipped."""
    frames = []
    for block in re.split(r"\r\n\r\n|\n\n|\r\r", text.lstrip("\ufeff")):
        name, data = None, []
        for line in re.split(r"\r\n|\n|\r", block):
            if not line or line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if data:
            frames.append((name, "\n".join(data)))
    return frames


def encode_event(event: dict[str, Any]) -> bytes:
    """One SSE event as the real service writes it: `event:` line plus one compact JSON line."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event.get('event_type', 'message')}\ndata: {data}\n\n".encode()


DONE_FRAME = b"event: done\ndata: [DONE]\n\n"


def dump_sse(transcript: Transcript) -> str:
    """Serialise a transcript to the exact text of a recorded `.sse` file."""
    text = b"".join(encode_event(e) for e in transcript.events).decode()
    return text + (DONE_FRAME.decode() if transcript.done_marker else "")


def from_sse(name: str, text: str) -> Transcript:
    """Parse a recorded `.sse` file; `[DONE]` becomes the done marker, the rest must be JSON."""
    events, done = [], False
    for _, data in parse_sse(text):
        if data.strip() == "[DONE]":
            done = True
            break
        events.append(json.loads(data))
    return Transcript(name, events, done)


# --- Loading fixtures --------------------------------------------------------------------------

def fixture_names() -> list[str]:
    """Names (file stems) of every recorded transcript and Interaction fixture."""
    return sorted({p.stem for p in [*FIXTURES.glob("*.sse"), *FIXTURES.glob("*.json")]})


def load_interaction(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def load(name: str) -> list[Transcript]:
    """Transcripts for a name: `x.sse`, `x.json` (exploded), or the hops `x_hop1.sse`, ..."""
    sse, js = FIXTURES / f"{name}.sse", FIXTURES / f"{name}.json"
    if sse.exists():
        return [from_sse(name, sse.read_text(encoding="utf-8"))]
    if js.exists():
        return [Transcript(name, explode(load_interaction(name)))]
    hops = sorted(FIXTURES.glob(f"{name}_hop*.sse"), key=lambda p: int(p.stem.rsplit("hop", 1)[1]))
    if not hops:
        raise KeyError(f"no fixture named {name!r} in {FIXTURES}")
    return [from_sse(p.stem, p.read_text(encoding="utf-8")) for p in hops]


# --- Folding events into an Interaction (independent of the app's assembler) ----------------

def delta_type(delta: dict[str, Any]) -> str | None:
    """The delta's `type`, inferring `text` for the typeless deltas of section 14.5."""
    if "type" in delta:
        return delta["type"]
    return "text" if "text" in delta else None


class Folder:
    """Accumulates SSE events into the steps, status and usage of the Interaction they describe."""

    def __init__(self) -> None:
        self.steps: dict[int, dict[str, Any]] = {}
        self.arguments: dict[int, str] = {}
        self.interaction: dict[str, Any] = {}
        self.status: str | None = None
        self.usage: dict[str, Any] | None = None
        self.continuation_token: str | None = None
        self.errors: list[dict[str, Any]] = []

    def feed(self, event: dict[str, Any]) -> None:
        kind = event.get("event_type")
        if kind in ("interaction.created", "interaction.completed"):
            self._lifecycle(event.get("interaction") or {}, final=kind == "interaction.completed")
        elif kind == "interaction.status_update":
            self.status = event.get("status", self.status)
            if event.get("continuation_token"):
                self.continuation_token = event["continuation_token"]
            self.usage = event.get("usage", self.usage)
        elif kind in LEGACY_STATUS_EVENTS:
            self.status = LEGACY_STATUS_EVENTS[kind]
        elif kind == "step.start":
            self.steps[event["index"]] = copy.deepcopy(event["step"])
        elif kind == "step.delta":
            self._delta(event["index"], event.get("delta") or {})
        elif kind == "step.stop":
            self._finish_arguments(event["index"])
            self.usage = event.get("usage", self.usage)
        elif kind == "error":
            self.status = "failed"
            self.errors.append(event.get("error") or {})

    def _lifecycle(self, interaction: dict[str, Any], *, final: bool) -> None:
        self.interaction.update({k: v for k, v in interaction.items() if k != "steps"})
        self.status = interaction.get("status", self.status)
        self.usage = interaction.get("usage", self.usage)
        if final:  # The completed snapshot is authoritative: no token there means none left.
            self.continuation_token = interaction.get("continuation_token")
            for index in list(self.arguments):
                self._finish_arguments(index)

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        step = self.steps.setdefault(index, {})
        kind = delta_type(delta)
        fields = {k: v for k, v in delta.items() if k != "type"}
        if kind == "text":
            self._append_text(step, delta.get("text", ""))
        elif kind == "text_annotation_delta":
            block = self._last_text_block(step)
            block.setdefault("annotations", []).extend(delta.get("annotations") or [])
        elif kind in MEDIA_TYPES:
            step.setdefault("content", []).append(dict(delta))
        elif kind == "thought_summary":
            if delta.get("content") is not None:
                step.setdefault("summary", []).append(delta["content"])
        elif kind == "thought_signature":
            step["signature"] = delta.get("signature")
        elif kind == "arguments_delta":
            self.arguments[index] = self.arguments.get(index, "") + (delta.get("arguments") or "")
        elif kind in STEP_FIELD_DELTAS:
            step.update(fields)
        # Unknown delta types are skipped, as the SDK's open unions allow.

    @staticmethod
    def _append_text(step: dict[str, Any], text: str) -> None:
        content = step.setdefault("content", [])
        if content and content[-1].get("type") == "text":
            content[-1]["text"] = content[-1].get("text", "") + text
        else:
            content.append({"type": "text", "text": text})

    @staticmethod
    def _last_text_block(step: dict[str, Any]) -> dict[str, Any]:
        content = step.setdefault("content", [])
        if not content or content[-1].get("type") != "text":
            content.append({"type": "text", "text": ""})
        return content[-1]

    def _finish_arguments(self, index: int) -> None:
        if index not in self.arguments:
            return
        raw = self.arguments.pop(index)
        try:
            self.steps[index]["arguments"] = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            self.steps[index]["arguments"] = {"_unparsed": raw}

    def output_steps(self) -> list[dict[str, Any]]:
        return [self.steps[i] for i in sorted(self.steps)]


def fold(events: Iterable[dict[str, Any]]) -> Folder:
    """Fold a whole event sequence."""
    folder = Folder()
    for event in events:
        folder.feed(event)
    return folder


# --- Exploding an Interaction into events -------------------------------------------------------

def words(text: str) -> list[str]:
    """Split text into word-sized deltas that concatenate back to the text."""
    return WORD_RE.findall(text) or [text]


def _model_output_events(index: int, step: dict[str, Any]) -> list[dict[str, Any]]:
    content = step.get("content") or []
    types = [b.get("type") for b in content]
    adjacent_text = any(a == b == "text" for a, b in zip(types, types[1:], strict=False))
    if adjacent_text or any(t not in MEDIA_TYPES | {"text"} for t in types):
        return [_start(index, step)]  # Not expressible as deltas: the start carries the content.
    events = [_start(index, {k: v for k, v in step.items() if k != "content"})]
    for block in content:
        if block["type"] == "text":
            events += [_delta(index, {"text": w, "type": "text"}) for w in words(block["text"])]
            if block.get("annotations"):
                events.append(_delta(index, {"annotations": block["annotations"],
                                             "type": "text_annotation_delta"}))
        else:
            events.append(_delta(index, dict(block)))
    return events


def _thought_events(index: int, step: dict[str, Any]) -> list[dict[str, Any]]:
    rest = {k: v for k, v in step.items() if k not in ("summary", "signature")}
    events = [_start(index, rest)]
    events += [_delta(index, {"content": b, "type": "thought_summary"})
               for b in step.get("summary") or []]
    if "signature" in step:
        events.append(_delta(index, {"signature": step["signature"], "type": "thought_signature"}))
    return events


def _function_call_events(index: int, step: dict[str, Any]) -> list[dict[str, Any]]:
    events = [_start(index, {**step, "arguments": {}})]
    encoded = json.dumps(step.get("arguments", {}), ensure_ascii=False)
    third = max(1, len(encoded) // 3)
    for i in range(0, len(encoded), third):
        events.append(_delta(index, {"arguments": encoded[i:i + third], "type": "arguments_delta"}))
    return events


EXPLODERS = {"model_output": _model_output_events, "thought": _thought_events,
             "function_call": _function_call_events}


def _start(index: int, step: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "step": copy.deepcopy(step), "event_type": "step.start"}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"index": index, "delta": delta, "event_type": "step.delta"}


def explode(interaction: dict[str, Any]) -> list[dict[str, Any]]:
    """Events a streaming create would emit for this (non-streaming) Interaction resource."""
    head = {k: interaction[k] for k in ("id", "object", "model", "agent") if k in interaction}
    events = [{"interaction": {**head, "status": "in_progress"},
               "event_type": "interaction.created"}]
    outputs = [s for s in interaction.get("steps") or [] if s.get("type") != "user_input"]
    for index, step in enumerate(outputs):
        exploder = EXPLODERS.get(step.get("type"))
        events += exploder(index, step) if exploder else [_start(index, step)]
        events.append({"index": index, "event_type": "step.stop"})
    tail = {k: interaction[k] for k in ("usage", "continuation_token") if k in interaction}
    events.append({"interaction": {"id": interaction.get("id", ""), "status": interaction["status"],
                                   **tail}, "event_type": "interaction.completed"})
    return events


# --- Event ids -------------------------------------------------------------------------------

def wants_event_id(event: dict[str, Any]) -> bool:
    """Section 14.3: ids on content deltas, status updates, errors and completion only."""
    kind = event.get("event_type")
    if kind == "step.delta":
        return delta_type(event.get("delta") or {}) != "thought_signature"
    return kind in ("interaction.completed", "interaction.status_update", "error")


# --- Generated transcripts -----------------------------------------------------------------------

FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")


def text_deltas(text: str, count: int | None) -> list[str]:
    """Split text into word deltas; with `count`, pad with filler or merge to exactly `count`."""
    parts = words(text) if text else []
    if count is None or count <= 0:
        return parts
    if len(parts) > count:
        return parts[:count - 1] + ["".join(parts[count - 1:])]
    if parts and not parts[-1].endswith(" "):
        parts[-1] += " "
    parts += [f"{FILLER[i % len(FILLER)]} " for i in range(count - len(parts))]
    return parts


# What the echo's thought says when summaries are asked for (`thinking_summaries: auto`).
SUMMARY = ("**Reading the message**\n\nThe user wants their words back.",
           "\n\n**Echoing it**\n\nI will repeat the message after \"Echo:\".")


def reply(text: str, *, model: str | None = None, deltas: int | None = None,
          thinking: bool = False, summaries: bool = False, input_tokens: int = 8,
          max_tokens: int | None = None) -> Transcript:
    """A plain model reply streamed as word deltas, with an optional thought step first
    (its summary streamed in two deltas when `summaries`, then its signature)."""
    head = {"id": "", "status": "in_progress", "object": "interaction"}
    if model:
        head["model"] = model
    events: list[dict[str, Any]] = [
        {"interaction": head, "event_type": "interaction.created"},
        {"interaction_id": "", "status": "in_progress", "event_type": "interaction.status_update"},
    ]
    index = 0
    if thinking:
        events.append(_start(0, {"type": "thought"}))
        if summaries:
            events += [_delta(0, {"content": {"type": "text", "text": part},
                                  "type": "thought_summary"}) for part in SUMMARY]
        events += [_delta(0, {"signature": "RmFrZVRob3VnaHRTaWduYXR1cmU=",
                              "type": "thought_signature"}),
                   {"index": 0, "event_type": "step.stop"}]
        index = 1
    pieces = text_deltas(text, deltas)
    status = "completed"
    if max_tokens is not None and len(pieces) > max_tokens:
        pieces, status = pieces[:max_tokens], "incomplete"
    events.append(_start(index, {"type": "model_output"}))
    events += [_delta(index, {"text": p, "type": "text"}) for p in pieces]
    events.append({"index": index, "event_type": "step.stop"})
    thought_tokens = 24 if thinking else 0
    usage = {"total_input_tokens": input_tokens, "total_output_tokens": len(pieces),
             "total_tokens": input_tokens + len(pieces) + thought_tokens}
    if thinking:
        usage["total_thought_tokens"] = thought_tokens
    events.append({"interaction": {"id": "", "status": status, "usage": usage},
                   "event_type": "interaction.completed"})
    return Transcript("reply", events)


def long_text(n: int, *, model: str = "gemini-3.5-flash") -> Transcript:
    """A benchmark transcript of exactly `n` text deltas."""
    return Transcript(f"long_text_{n}", reply("", model=model, deltas=n).events)
