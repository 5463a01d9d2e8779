"""The model's worker process, seen from the server: start it, talk to it, notice it die."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class WorkerFailed(Exception):
    """The worker could not be started, or its model could not be loaded."""


class WorkerProcess:
    """One `conversations.local.worker` child. A reader thread hands its events to `on_event`
    (called with {"type": "exit"} last), and records when it last heard from it."""

    def __init__(self, argv: list[str], on_event: Callable[[dict], None]) -> None:
        self.argv = argv
        self.on_event = on_event
        self.info: dict[str, Any] = {}
        self.last_heard = time.monotonic()
        self._ready = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._write_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float) -> dict[str, Any]:
        """Start the process and wait until the model is loaded; returns its `ready` info."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "conversations.local.worker", *self.argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
            # Its own session: a Ctrl-C in the server's terminal is the server's to handle.
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                filter(None, [PROJECT_ROOT, os.environ.get("PYTHONPATH")]))},
        )
        threading.Thread(target=self._read, name=f"local-llm-{self.pid}", daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise WorkerFailed(f"the model did not load within {timeout:g} s")
        if "pid" not in self.info:
            self.kill()
            raise WorkerFailed(self.info.get("fatal") or f"{self.exit_reason()} while loading")
        logger.info("offline model worker %s ready in %s ms (%s)", self.pid,
                    self.info.get("load_ms"), self.info.get("system_info"))
        return self.info

    def send(self, **message: Any) -> bool:
        """Write one request; False when the process is gone."""
        try:
            with self._write_lock:
                self._proc.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
                self._proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError, AttributeError):
            return False

    def kill(self) -> None:
        """SIGKILL and reap: works on a hung or stopped process too."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait()

    def stop(self, timeout: float = 2.0) -> None:
        """Close stdin (the worker exits on its own), then kill whatever is left."""
        if self._proc is None:
            return
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def exit_reason(self) -> str:
        code = self._proc.poll() if self._proc else None
        if code is None:
            return "it is still running"
        if code < 0:
            try:
                return f"it was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"it was killed by signal {-code}"
        return f"it exited with status {code}"

    def _read(self) -> None:
        for line in self._proc.stdout:
            self.last_heard = time.monotonic()
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("type") == "ready":
                self.info = message
                self._ready.set()
            elif message.get("type") == "fatal":
                self.info = {"fatal": message.get("message") or "the model could not be loaded"}
                self._ready.set()
            else:
                self.on_event(message)
        self._proc.wait()
        self._ready.set()
        self.on_event({"type": "exit"})
