"""The fake Gemini Interactions API upstream: a real HTTP/1.1 server on loopback.

Runs its own asyncio loop in a daemon thread (`FakeUpstream().start()`), or in the foreground
(`python -m devtools.fake_upstream`). Every create runs a producer task that appends events to the
interaction's log; SSE responses (create or GET resume) follow that log, so a dropped stream can
be resumed while the interaction keeps generating.

The server is split by concern: config.py (Config, Fault), records.py (one interaction's Record and
input steps), connections.py (HTTP, routing, faults, SSE), interactions.py and files.py (the API
routes) and control.py (the /_control/ API). This file keeps the lifecycle and the test-facing API.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import re
import threading
import time
from typing import Any

from devtools.fake_upstream import transcripts as tr
from devtools.fake_upstream.config import Config, Fault
from devtools.fake_upstream.connections import Connections
from devtools.fake_upstream.files import FileRoutes, FileStore
from devtools.fake_upstream.interactions import InteractionRoutes
from devtools.fake_upstream.records import Record
from devtools.fake_upstream.wire import Request


class FakeUpstream(Connections, InteractionRoutes, FileRoutes):
    """The fake upstream. Use as a context manager, or start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = "test-key",
                 delay: float | None = None, **config: Any) -> None:
        self.host, self.port = host, port
        self.api_key = api_key
        self.config = Config(**config)
        if delay is not None:
            self.config.delta_interval = delay
        self._initial_config = self.config
        self._lock = threading.Lock()
        self._scripts: list[tr.Transcript] = []
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._store: dict[str, Record] = {}
        self._tokens: dict[str, str] = {}  # continuation token -> interaction that issued it
        self._files = FileStore()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeUpstream:
        """Serve from a daemon thread with its own event loop."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as exc:  # report to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener, cancel streams and producers, stop the loop and join the thread."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve_forever(self) -> None:
        """Serve in the current loop (the separate-process mode of __main__)."""
        self._loop = asyncio.get_running_loop()
        await self._open()
        try:
            await asyncio.Event().wait()
        finally:
            await self._close()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port,
                                                  backlog=2048, limit=256 * 1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- test-facing API --------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every API/upload request received (not /_control), oldest first."""
        with self._lock:
            return list(self._requests)

    def find_requests(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Recorded requests filtered by method and a regex searched in the path."""
        return [r for r in self.requests if (method is None or r.method == method.upper())
                and (path is None or re.search(path, r.path))]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def interactions(self) -> dict[str, Record]:
        """Stored interactions by id (a snapshot of the mapping)."""
        return dict(self._store)

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v.resource) for k, v in self._files.files.items()}

    def expire_file(self, name: str) -> None:
        """Make an uploaded file (`files/abc` or `abc`) gone, as its 48 hours running out would."""
        self._files.expire(name.removeprefix("files/"))

    def history(self, interaction_id: str) -> list[dict[str, Any]]:
        """The whole conversation the server holds for an id, following previous_interaction_id."""
        chain, record = [], self._store.get(interaction_id)
        while record is not None:
            chain.append(record)
            record = self._store.get(record.body.get("previous_interaction_id") or "")
        return [s for r in reversed(chain) for s in r.input_steps + r.steps]

    def script(self, *items: str | list[dict[str, Any]] | dict[str, Any] | tr.Transcript) -> None:
        """Queue replies for the next creates: fixture names, event lists, Interactions...

        A name with hops (`continuation` -> `continuation_hop1`, `_hop2`) queues every hop.
        """
        transcripts = [t for item in items for t in self._resolve(item)]
        with self._lock:
            self._scripts.extend(transcripts)

    @staticmethod
    def _resolve(item: Any) -> list[tr.Transcript]:
        if isinstance(item, tr.Transcript):
            return [item.copy()]
        if isinstance(item, str):
            return tr.load(item)
        if isinstance(item, list):
            return [tr.Transcript("scripted", copy.deepcopy(item))]
        if isinstance(item, dict) and "status" in item:
            return [tr.Transcript("scripted", tr.explode(item))]
        raise TypeError(f"cannot script {item!r}")

    def fault(self, kind: str | int, *, times: int | None = 1, method: str | None = None,
              path: str | None = None, after: int = 0, delay: float = 0.0,
              retry_after: str | float | None = "0", message: str | None = None) -> Fault:
        """Inject a failure: an HTTP status (429/500/503/...), "drop", "slow" or "malformed"."""
        status = int(kind) if str(kind).isdigit() else 0
        made = Fault("status" if status else str(kind), status, times, method, path, after, delay,
                     None if retry_after is None else str(retry_after), message)
        if made.kind not in ("status", "drop", "slow", "malformed"):
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._faults.append(made)
        return made

    def configure(self, **changes: Any) -> Config:
        self.config = dataclasses.replace(self.config, **changes)
        return self.config

    def reset(self) -> None:
        """Forget scripts, faults, requests, interactions and files; restore the start config."""
        with self._lock:
            self._scripts.clear()
            self._faults.clear()
            self._requests.clear()
        self._store.clear()
        self._tokens.clear()
        self._files = FileStore()
        self.config = self._initial_config

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no interaction is still generating."""
        deadline = time.monotonic() + timeout
        while any(not r.finished for r in list(self._store.values())):
            if time.monotonic() > deadline:
                raise TimeoutError("interactions still generating")
            time.sleep(0.01)
