"""The interaction routes: create, get (or resume its stream), cancel, delete.

A create checks the body, stores a Record and spawns `_produce`, which appends the scripted (or
echo) transcript's events to the record's log at the configured pace.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from devtools.fake_upstream import transcripts as tr
from devtools.fake_upstream.config import Config
from devtools.fake_upstream.files import FileStore
from devtools.fake_upstream.records import (
    RUNNING,
    EventStream,
    InputError,
    Record,
    last_user_text,
    normalize_input,
)
from devtools.fake_upstream.wire import Request, Response, error


def is_text_delta(event: dict[str, Any]) -> bool:
    return event.get("event_type") == "step.delta" and tr.delta_type(event["delta"]) == "text"


def stamp_text(event: dict[str, Any], seq: int) -> dict[str, Any]:
    """The delta with "[seq:emit time]" appended: a client measures latency whatever the framing."""
    delta = event["delta"]
    text = f"{delta.get('text', '')}[{seq}:{time.time():.6f}]"
    return {**event, "delta": {**delta, "text": text}}


def new_interaction_id() -> str:
    return "v1_" + secrets.token_urlsafe(24)


class InteractionRoutes:
    """FakeUpstream's /interactions handlers (a mixin: the state lives on the server)."""

    config: Config
    _lock: threading.Lock
    _scripts: list[tr.Transcript]
    _store: dict[str, Record]
    _tokens: dict[str, str]
    _spawn: Callable[[Any], asyncio.Task[Any]]
    _files: FileStore
    base_url: str

    async def _do_create(self, req: Request, v: str) -> Response | EventStream:
        body = req.json
        if not isinstance(body, dict):
            return error(400, "The request body must be a JSON object.")
        if bool(body.get("model")) == bool(body.get("agent")):
            return error(400, "Exactly one of 'model' or 'agent' must be set.")
        if body.get("background") is True and body.get("store") is False:
            return error(400, "Background interactions require store=true.")
        previous, problem = self._previous(body)
        if problem is not None:
            return problem
        if "input" not in body and not body.get("continuation_token"):
            return error(400, "'input' is required.")
        unusable = self._files.check_use(body.get("input"), self.base_url)
        if unusable is not None:
            return unusable
        steps = normalize_input(body.get("input"))
        self._check_function_results(steps, previous)
        self._check_continuation(body)
        transcript = self._next_transcript(body, steps)
        record = Record(new_interaction_id(), body, steps, transcript)
        if record.store:
            self._store[record.id] = record
        record.task = self._spawn(self._produce(record, transcript))
        if body.get("stream") is True or req.query.get("alt") == "sse":
            return EventStream(record, 0)
        if not record.background:
            await record.done.wait()
        return Response(200, record.resource())

    def _previous(self, body: dict[str, Any]) -> tuple[Record | None, Response | None]:
        pid = body.get("previous_interaction_id")
        if not pid:
            return None, None
        previous = self._store.get(pid)
        if previous is None:
            return None, error(404, f"Interaction {pid} was not found (unknown or not stored).")
        if previous.status in RUNNING:
            return None, error(400, f"Interaction {pid} is still {previous.status}; wait for it "
                                    "or cancel it before continuing.", name="FAILED_PRECONDITION")
        return previous, None

    @staticmethod
    def _check_function_results(steps: list[dict[str, Any]], previous: Record | None) -> None:
        pending = set()
        if previous is not None and previous.status == "requires_action":
            before = previous.steps
            answered = {s.get("call_id") for s in before if s.get("type") == "function_result"}
            pending = {s.get("id") for s in before if s.get("type") == "function_call"} - answered
        known = set(pending)
        for step in steps:
            if step.get("type") == "function_call":
                known.add(step.get("id"))
            elif step.get("type") == "function_result" and step.get("call_id") not in known:
                raise InputError(f"function_result call_id {step.get('call_id')!r} does not match "
                                 "any function_call.")
        missing = pending - {s.get("call_id") for s in steps if s.get("type") == "function_result"}
        if missing:
            raise InputError(f"Missing function_result for call_id(s): {sorted(missing)}.")

    def _check_continuation(self, body: dict[str, Any]) -> None:
        token = body.get("continuation_token")
        if not token:
            return
        owner = self._tokens.get(token)
        if owner is None:
            raise InputError("Unknown continuation_token.")
        pid = body.get("previous_interaction_id")
        if pid and pid != owner:
            raise InputError(f"continuation_token was not issued by interaction {pid}.")

    def _next_transcript(self, body: dict[str, Any], steps: list[dict[str, Any]]) -> tr.Transcript:
        with self._lock:
            scripted = self._scripts.pop(0) if self._scripts else None
        if scripted is None:
            config = body.get("generation_config") or {}
            summaries = config.get("thinking_summaries") == "auto"
            thinking = bool(config.get("thinking_level")) or summaries
            limit = config.get("max_output_tokens")
            text = "Echo: " + (last_user_text(steps) if steps else "(continued)")
            scripted = tr.reply(text, model=body.get("model") or body.get("agent"),
                                deltas=self.config.deltas, thinking=thinking,
                                summaries=summaries,
                                input_tokens=4 + len(tr.words(json.dumps(body.get("input")))),
                                max_tokens=limit)
            scripted.done_marker = self.config.done_marker
        return scripted

    async def _produce(self, record: Record, transcript: tr.Transcript) -> None:
        """Append the transcript's events to the record's log at the configured pace."""
        stamped = 0
        try:
            if record.background and self.config.background_delay:
                await asyncio.sleep(self.config.background_delay)
            for event in transcript.events:
                interval = self.config.delta_interval
                if interval and event.get("event_type") == "step.delta":
                    await asyncio.sleep(interval)
                if self.config.stamp_text and is_text_delta(event):
                    stamped += 1
                    event = stamp_text(event, stamped)
                record.append(event, self._tokens)
        finally:
            record.finish()

    async def _do_get(self, req: Request, v: str, id: str) -> Response | EventStream:
        record = self._store.get(id)
        if record is None:
            return error(404, f"Interaction {id} was not found.")
        if req.query.get("stream") != "true":
            return Response(200, record.resource(
                timeline=True, include_input=req.query.get("include_input") == "true"))
        last = req.query.get("last_event_id")
        if not last:
            return EventStream(record, 0)
        if last not in record.index_of:
            return error(400, f"Unknown last_event_id {last!r} for interaction {id}.")
        return EventStream(record, record.index_of[last] + 1)

    async def _do_cancel(self, req: Request, v: str, id: str) -> Response:
        record = self._store.get(id)
        if record is None:
            return error(404, f"Interaction {id} was not found.")
        if not (record.background and record.status in RUNNING and not record.finished):
            return error(400, "Only a running background interaction can be cancelled.",
                         name="FAILED_PRECONDITION")
        self._abort(record, "cancelled")
        return Response(200, record.resource())

    def _abort(self, record: Record, status: str) -> None:
        if record.task is not None:
            record.task.cancel()  # it is suspended in a sleep, so nothing more gets appended
        # The placeholder id makes transcripts that carry ids give this event one too.
        record.append({"interaction": {"id": record.id, "status": status}, "event_id": "",
                       "event_type": "interaction.completed"}, self._tokens)
        record.finish()

    async def _do_delete(self, req: Request, v: str, id: str) -> Response:
        record = self._store.pop(id, None)
        if record is None:
            return error(404, f"Interaction {id} was not found.")
        if not record.finished:
            self._abort(record, "cancelled")
        return Response(200, {})
