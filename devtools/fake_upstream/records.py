"""One interaction as the fake holds it: the Record, and the create `input` as timeline steps."""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devtools.fake_upstream import transcripts as tr

# Request fields the resource echoes back (protocol section 4).
ECHOED = ("model", "agent", "previous_interaction_id", "system_instruction", "tools",
          "generation_config", "agent_config", "response_format", "safety_settings", "labels",
          "service_tier", "webhook_config", "environment", "response_mime_type",
          "response_modalities", "cached_content")
RUNNING = ("in_progress", "queued")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InputError(Exception):
    """A create body the real service would reject with 400."""


class Record:
    """One interaction: its request, event log (with ids) and the folded resource."""

    def __init__(self, iid: str, body: dict[str, Any], input_steps: list[dict[str, Any]],
                 transcript: tr.Transcript) -> None:
        self.id = iid
        self.body = body
        self.input_steps = input_steps
        self.store = body.get("store", True) is not False
        self.background = body.get("background") is True
        self.created = self.updated = now_iso()
        self.events: list[dict[str, Any]] = []
        self.wire: list[bytes] = []
        self.index_of: dict[str, int] = {}
        self.folder = tr.Folder()
        self.status = "in_progress"
        self.finished = False
        self.done_marker = transcript.done_marker
        self.keep_ids = any("event_id" in e for e in transcript.events)
        self.id_prefix = secrets.token_hex(4)
        self.tokens: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def steps(self) -> list[dict[str, Any]]:
        """Output steps produced by this interaction so far."""
        return self.folder.output_steps()

    def resource(self, *, timeline: bool = False, include_input: bool = False) -> dict[str, Any]:
        """The Interaction resource: POST shows only new steps, GET the timeline with input."""
        data: dict[str, Any] = {"id": self.id, "status": self.status, "object": "interaction",
                                "created": self.created, "updated": self.updated}
        data.update({k: self.body[k] for k in ECHOED if k in self.body})
        steps = (self.input_steps if timeline else []) + self.steps
        if steps:
            data["steps"] = copy.deepcopy(steps)
        if self.folder.usage:
            data["usage"] = self.folder.usage
        if self.folder.continuation_token:
            data["continuation_token"] = self.folder.continuation_token
        if self.folder.errors:
            data["errors"] = self.folder.errors
        if "environment" in self.body:
            data["environment_id"] = f"env_{self.id_prefix}"
        if include_input and "input" in self.body:
            data["input"] = echo_input(self.body["input"])
        return data

    def rewrite(self, event: dict[str, Any], position: int,
                tokens: dict[str, str]) -> dict[str, Any]:
        """Give a transcript event this interaction's id, fresh tokens and fresh event ids."""
        event = dict(event)
        if isinstance(event.get("interaction"), dict):
            inner = event["interaction"] = dict(event["interaction"])
            inner["id"] = self.id
            for key in ("model", "agent"):
                if key in inner and key in self.body:
                    inner[key] = self.body[key]
            if "created" in inner:
                inner["created"] = self.created
            self._rewrite_token(inner, tokens)
        if "interaction_id" in event:
            event["interaction_id"] = self.id
        self._rewrite_token(event, tokens)
        wanted = "event_id" in event if self.keep_ids else tr.wants_event_id(event)
        if wanted:
            event_id = f"{self.id_prefix}-{position}"
            event["event_id"] = event_id
            event["event_type"] = event.pop("event_type", None)
            self.index_of[event_id] = position
        return event

    def _rewrite_token(self, holder: dict[str, Any], tokens: dict[str, str]) -> None:
        old = holder.get("continuation_token")
        if old:
            if old not in self.tokens:
                self.tokens[old] = "ct_" + secrets.token_urlsafe(12)
                tokens[self.tokens[old]] = self.id
            holder["continuation_token"] = self.tokens[old]

    def append(self, event: dict[str, Any], tokens: dict[str, str]) -> None:
        event = self.rewrite(event, len(self.events), tokens)
        self.events.append(event)
        self.wire.append(tr.encode_event(event))
        self.folder.feed(event)
        if self.folder.status and self.folder.status != self.status:
            self.status = self.folder.status
            self.updated = now_iso()
        self.notify()

    def notify(self) -> None:
        self.wake.set()
        self.wake = asyncio.Event()

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.updated = now_iso()
            self.done.set()
            self.notify()


@dataclass
class EventStream:
    """A pending SSE response: follow `record` from event `position`."""

    record: Record
    position: int


def normalize_input(value: Any) -> list[dict[str, Any]]:
    """The four `input` shapes of section 3.2 as timeline steps (string content becomes a list)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [_user_input([{"type": "text", "text": value}])]
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, dict) for i in items):
        raise InputError("input items must be JSON objects")
    is_step = [i.get("type") in tr.STEP_TYPES for i in items]
    if all(is_step):
        return [_normalize_step(i) for i in items]
    if any(is_step):
        raise InputError("input mixes steps and content blocks")
    return [_user_input(items)]


def echo_input(value: Any) -> Any:
    """The request input as GET ?include_input=true shows it: string step content as a list."""
    if isinstance(value, list):
        return [_normalize_step(i) if isinstance(i, dict) else i for i in value]
    return value


def _user_input(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    typed = [b if "type" in b or "text" not in b else {"type": "text", **b} for b in blocks]
    return {"type": "user_input", "content": typed}


def _normalize_step(step: dict[str, Any]) -> dict[str, Any]:
    if step.get("type") == "user_input" and isinstance(step.get("content"), str):
        return {**step, "content": [{"type": "text", "text": step["content"]}]}
    return step


def last_user_text(steps: list[dict[str, Any]]) -> str:
    """What the echo reply repeats: the last user text, or a summary of function results."""
    for step in reversed(steps):
        if step.get("type") == "user_input":
            content = step.get("content") or []
            texts = [b.get("text", "") for b in content if b.get("type") == "text"]
            return texts[-1] if texts else "(no text)"
        if step.get("type") == "function_result":
            results = [s for s in steps if s.get("type") == "function_result"]
            return "; ".join(f"{r.get('name') or r.get('call_id')} returned {_result_text(r)}"
                             for r in results)
    return "(no input)"


def _result_text(step: dict[str, Any]) -> str:
    result = step.get("result")
    if isinstance(result, list):
        return " ".join(str(b.get("text", "")) for b in result if isinstance(b, dict))
    return result if isinstance(result, str) else json.dumps(result)
