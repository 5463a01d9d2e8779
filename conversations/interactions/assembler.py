"""Fold a stream of events into the `steps` list the non-streaming resource would carry.

Also produces coalesced UI ops (`take_changes`) for the websocket:
`("text", i, b, appended)` appends to `steps[i].content[b].text` (creating the block when `b`
is one past the end) and `("step", i, step)` sets `steps[i]` whole.

Text deltas are the hot path: they are buffered as string pieces and joined lazily (when
`steps` is read, on `take_changes()`, or when anything else touches the step), so folding
n deltas costs O(n) and no dict is copied per delta.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .continuation import merge_usage
from .delta_handlers import (
    DELTA_HANDLERS,
    as_blocks,
    copy_json,
    is_text,
    on_annotation,
    on_unknown_delta,
)
from .events import (
    ErrorEvent,
    Event,
    InteractionCompleted,
    InteractionCreated,
    InteractionStatusUpdate,
    LegacyStatusEvent,
    StepDelta,
    StepStart,
    StepStop,
    UnknownEvent,
)
from .steps import SERVER_TOOLS

# Step type implied by a delta that arrives for a step that was never started.
_IMPLIED_STEP = {
    "thought_summary": "thought",
    "thought_signature": "thought",
    "arguments_delta": "function_call",
    "arguments": "function_call",
    "function_result": "function_result",
    **{f"{tool}_{kind}": f"{tool}_{kind}" for tool in SERVER_TOOLS for kind in ("call", "result")},
}


class Assembler:
    """Folds events (of one or several continuation hops) into steps, status and usage.

    In-band `error` events do not raise: they are recorded in `.error` (the raw
    `{code, message}` dict), the status becomes `failed` and `finished` is set.
    Unknown events (and known ones whose payload has the wrong shape) are kept verbatim in
    `unknown_events`; deltas of an unknown type that cannot be folded are kept in
    `unknown_deltas` as `(step index, raw delta)`.
    """

    def __init__(self) -> None:
        self._steps: list[dict[str, Any]] = []
        self.interaction_id: str | None = None
        self.interaction_ids: list[str] = []  # one per continuation hop
        self.status: str | None = None
        self.continuation_token: str | None = None
        self.last_event_id: str | None = None
        self.error: dict[str, Any] | None = None
        self.finished = False
        self.changed: set[int] = set()
        self.step_usage: dict[int, Any] = {}
        self.unknown_events: list[dict[str, Any]] = []
        self.unknown_deltas: list[tuple[int, dict[str, Any]]] = []
        self._hop_usage: list[dict[str, Any] | None] = [None]
        self._hops = 0
        self._next_hop = False  # the last hop ended with requires_continuation
        self._map: dict[int, int] = {}  # hop-local step index -> global index (-1: dropped)
        self._leading = False  # in a later hop, before its first non-user_input step
        self._args: dict[int, list[str]] = {}  # argument fragments per step
        self._open: list[Any] | None = None  # [i, block, pieces, b or None]: text being buffered
        self._ops: list[list[Any]] = []
        self._step_ops: set[int] = set()
        self._text_ops: dict[int, list[Any]] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            InteractionCreated: self._on_created,
            InteractionStatusUpdate: self._on_status,
            LegacyStatusEvent: self._on_status,
            StepStart: self._on_start,
            StepStop: self._on_stop,
            InteractionCompleted: self._on_completed,
            ErrorEvent: self._on_error,
            UnknownEvent: self._on_unknown,
        }

    # ------------------------------------------------------------------ public

    @property
    def steps(self) -> list[dict[str, Any]]:
        self._flush()
        return self._steps

    @property
    def usage(self) -> dict[str, Any] | None:
        return merge_usage(self._hop_usage)

    def feed(self, event: Event) -> None:
        try:
            if type(event) is StepDelta:
                self._on_delta(event)
                return
            event_id = event.raw.get("event_id")
            if event_id is not None:
                self.last_event_id = event_id
            self._handlers.get(type(event), self._on_unknown)(event)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError):
            # A known event type with a payload of the wrong shape: keep it, don't crash.
            self.unknown_events.append(event.raw)

    def feed_all(self, events: Iterable[Event]) -> Assembler:
        for event in events:
            self.feed(event)
        return self

    def finalize(self) -> None:
        """Join buffered text and parse pending call arguments (e.g. after a failed stream)."""
        self._flush()
        for i in list(self._args):
            self._finish_arguments(i)

    def take_changes(self) -> list[tuple[Any, ...]]:
        """The UI ops since the last call, coalesced; "step" ops carry a copy of the step."""
        self._flush()
        steps = self._steps
        out = [
            ("text", op[1], op[2], "".join(op[3]))
            if op[0] == "text"
            else ("step", op[1], copy_json(steps[op[1]]))
            for op in self._ops
        ]
        self._ops = []
        self._step_ops = set()
        self._text_ops = {}
        self.changed = set()
        return out

    # ------------------------------------------------------------------ text hot path

    def _on_delta(self, event: StepDelta) -> None:
        raw = event.raw
        event_id = raw.get("event_id")
        if event_id is not None:
            self.last_event_id = event_id
        delta = raw.get("delta") or {}
        i = self._map.get(raw.get("index"))  # type: ignore[arg-type]
        if i is None:
            i = self._implicit_start(raw.get("index"), delta)
        elif i < 0:
            return  # a leading user_input of a later hop: dropped
        if "metadata" in raw:
            self._take_usage((raw["metadata"] or {}).get("total_usage"))
        kind = delta.get("type")
        if kind == "text" or (kind is None and "text" in delta):
            self._append_text(i, delta.get("text") or "")
            if "annotations" in delta:
                self._flush()
                on_annotation(self._steps[i], delta)
                self._mark(i)
            return
        self._flush()
        handler = DELTA_HANDLERS.get(kind, on_unknown_delta)  # type: ignore[arg-type]
        folded = handler(self._steps[i], delta)
        if folded is True:
            self._mark(i)
        elif folded is False:
            self.unknown_deltas.append((i, delta))
        elif folded is not None:  # a fragment of the call's JSON arguments: parsed at step.stop
            self._args.setdefault(i, []).append(folded)
            self.changed.add(i)

    def _append_text(self, i: int, text: str) -> None:
        open_ = self._open
        if open_ is None or open_[0] != i:
            open_ = self._open_text(i)
        open_[2].append(text)
        self.changed.add(i)
        b = open_[3]
        if i in self._step_ops:
            return
        if b is None:
            self._mark(i)
            return
        op = self._text_ops.get(i)
        if op is not None and op[2] == b:
            op[3].append(text)
        else:
            op = ["text", i, b, [text]]
            self._ops.append(op)
            self._text_ops[i] = op

    def _open_text(self, i: int) -> list[Any]:
        """Start buffering into the last text block of step i (creating it if needed)."""
        self._flush()
        step = self._steps[i]
        in_summary = step.get("type") == "thought"
        blocks = step.get("summary" if in_summary else "content")
        if not isinstance(blocks, list):
            blocks = as_blocks(blocks)
            step["summary" if in_summary else "content"] = blocks
            self._mark(i)
        if blocks and isinstance(blocks[-1], dict) and is_text(blocks[-1]):
            block = blocks[-1]
        else:
            block = {"type": "text", "text": ""}
            blocks.append(block)
        # A thought's summary has no "text" op in the websocket protocol: send the whole step.
        self._open = [i, block, [], None if in_summary else len(blocks) - 1]
        return self._open

    def _flush(self) -> None:
        open_ = self._open
        if open_ is not None:
            block, pieces = open_[1], open_[2]
            if pieces:
                block["text"] = (block.get("text") or "") + "".join(pieces)
            self._open = None

    def _mark(self, i: int) -> None:
        """Step i changed other than by a text append: the UI gets the whole step."""
        self.changed.add(i)
        if i in self._step_ops:
            return
        self._step_ops.add(i)
        if self._text_ops.pop(i, None) is not None:
            self._ops = [op for op in self._ops if op[0] != "text" or op[1] != i]
        self._ops.append(["step", i])

    # ------------------------------------------------------------------ lifecycle events

    def _on_created(self, event: InteractionCreated) -> None:
        iid = event.interaction_id
        if self._hops == 0 or self._next_hop or (iid and iid not in self.interaction_ids):
            self._begin_hop()
        if iid:
            self.interaction_id = iid
            if iid not in self.interaction_ids:
                self.interaction_ids.append(iid)
        if event.status:
            self.status = event.status
        self._take_usage(event.usage)

    def _begin_hop(self) -> None:
        self.finalize()
        if self._hops:
            self._hop_usage.append(None)
            self._leading = True
        self._hops += 1
        self._next_hop = False
        self._map = {}

    def _on_status(self, event: InteractionStatusUpdate) -> None:
        if event.status:
            self.status = event.status
        if event.interaction_id and not self.interaction_id:
            self.interaction_id = event.interaction_id
        if event.continuation_token:
            self.continuation_token = event.continuation_token
        self._take_usage(event.usage)

    def _on_completed(self, event: InteractionCompleted) -> None:
        if not isinstance(event.raw.get("interaction"), dict):
            raise TypeError("interaction.completed without an interaction object")
        self.finalize()
        inter = event.interaction
        if inter.get("id"):
            self.interaction_id = inter["id"]
        if inter.get("status"):
            self.status = inter["status"]
        # Authoritative: a completed event without a token clears any checkpoint.
        self.continuation_token = inter.get("continuation_token")
        self._take_usage(inter.get("usage"))
        if inter.get("steps") and not self._map:
            for step in inter["steps"]:
                self._start(len(self._map), step)
        self._next_hop = self.status == "requires_continuation"
        self.finished = not self._next_hop

    def _on_error(self, event: ErrorEvent) -> None:
        self.finalize()
        self.error = event.error or {"code": None, "message": ""}
        self.status = "failed"
        self.finished = True

    def _on_unknown(self, event: Event) -> None:
        self.unknown_events.append(event.raw)

    def _take_usage(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self._hop_usage[-1] = usage

    # ------------------------------------------------------------------ steps

    def _on_start(self, event: StepStart) -> None:
        step = event.step
        if not isinstance(step, dict):
            raise TypeError("step.start without a step object")
        self._start(event.index, step)

    def _start(self, local: Any, step: dict[str, Any]) -> int:
        self._flush()
        if self._leading and step.get("type") == "user_input":
            self._map[local] = -1  # later hops repeat no user input (protocol 11.2)
            return -1
        self._leading = False
        i = self._map.get(local, -1)
        if i < 0:
            i = len(self._steps)
            self._map[local] = i
            self._steps.append({})
        # Start from the given step: the real service may already put content in it (14.1).
        self._steps[i] = copy_json(step)
        self._args.pop(i, None)
        self._mark(i)
        return i

    def _implicit_start(self, local: Any, delta: dict[str, Any]) -> int:
        kind = _IMPLIED_STEP.get(delta.get("type"), "model_output")  # type: ignore[arg-type]
        return self._start(local, {"type": kind})  # never user_input, so never dropped

    def _on_stop(self, event: StepStop) -> None:
        i = self._map.get(event.index, -1)
        self._take_usage(event.usage)
        if i < 0:
            return
        self._flush()
        if event.step_usage is not None:
            self.step_usage[i] = event.step_usage
        self._finish_arguments(i)

    def _finish_arguments(self, i: int) -> None:
        pieces = self._args.pop(i, None)
        if pieces is None:
            return
        text = "".join(pieces)
        step = self._steps[i]
        try:
            parsed = json.loads(text) if text.strip() else {}
        except ValueError:
            parsed = text  # keep what came rather than lose it
        current = step.get("arguments")
        if isinstance(current, dict) and isinstance(parsed, dict):
            parsed = {**current, **parsed}
        step["arguments"] = parsed
        self._mark(i)
