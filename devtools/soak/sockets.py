"""A websocket of the soak: read in a task of its own into a Screen; a close the soak did not
ask for is recorded in the report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import websockets

from devtools.screen import Screen
from devtools.soak.report import Close, Report
from devtools.team import Team

OPEN_TIMEOUT = 30.0  # seconds for the handshake and the snapshot, on a loaded machine
SYNC_AFTER = 1.0  # seconds a gap may wait for its turn.sync before the socket asks for a sync


class Socket:
    def __init__(self, name: str, process: int, ws, report: Report, started: float):
        self.name, self.process, self.ws = name, process, ws
        self.report, self.started = report, started
        self.screen = Screen()
        self.frames = 0
        self.by_client: dict[str, str] = {}  # client_id -> turn id, from turn.created
        self.errors: dict[str, dict] = {}  # client_id -> the error frame refusing it
        self.closing = False
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, team: Team, name: str, process: int, member: int, report: Report,
                   started: float) -> Socket:
        """Connected, and its snapshot received."""
        ws = await team.connect(process, member, open_timeout=OPEN_TIMEOUT)
        report.sockets_opened += 1
        sock = cls(name, process, ws, report, started)
        if not await sock.until(lambda: sock.frames > 0, OPEN_TIMEOUT):
            raise RuntimeError(f"{name} on process {process}: no snapshot")
        return sock

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                self.frames += 1
                self.screen.feed(frame)
                if frame["type"] == "turn.created":
                    self.by_client[frame["turn"]["client_id"]] = frame["turn"]["id"]
                elif frame["type"] == "error" and "client_id" in frame:
                    self.errors[frame["client_id"]] = frame
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.report.gaps += self.screen.gaps
            if not self.closing:
                loop = asyncio.get_running_loop()
                self.report.unexpected.append(Close(
                    self.name, self.process, self.ws.close_code, self.ws.close_reason or "",
                    round(loop.time() - self.started, 1)))
            self.changed.set()

    @property
    def is_open(self) -> bool:
        return not self.reader.done()

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait for `ready()` (checked after each frame); False on timeout or close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0 or not self.is_open:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return ready()
        return True

    async def until_done(self, turn_id: str, timeout: float) -> bool:
        """Wait for the turn to end on this socket. Frames past a gap wait for the turn.sync
        that fills it; after SYNC_AFTER without one, the socket asks for a `sync` (a fresh
        snapshot), as the page does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        screen = self.screen
        while not screen.done(turn_id):
            if not screen.stuck(turn_id):
                await self.until(lambda: screen.done(turn_id) or screen.stuck(turn_id),
                                 deadline - loop.time())
            elif not await self.until(lambda: not screen.stuck(turn_id),
                                      min(SYNC_AFTER, deadline - loop.time())):
                if not self.is_open or loop.time() >= deadline:
                    break
                self.report.syncs += 1
                await self.send({"type": "sync"})
            if not self.is_open or loop.time() >= deadline:
                break
        return screen.done(turn_id)

    async def close(self) -> None:
        self.closing = True
        self.report.closed_by_us += 1
        await self.ws.close()
        await self.reader
