"""A conversation with light traffic: a socket on each daphne process, a message every few
seconds from either, each reply checked on every socket, with stops, reconnects and a socket
that leaves and joins again mid-reply (plan.ROUNDS)."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid

import websockets

from devtools.fake_upstream.transcripts import text_deltas
from devtools.soak.plan import ROUNDS, Plan
from devtools.soak.report import Report
from devtools.soak.sockets import Socket
from devtools.team import Team


class Chat:
    def __init__(self, team: Team, plan: Plan, report: Report, index: int, member: int,
                 started: float):
        self.team, self.plan, self.report = team, plan, report
        self.index, self.member, self.started = index, member, started
        self.name = f"chat {index}"
        self.random = random.Random(plan.seed * 1000 + index)
        self.sockets: list[Socket] = []  # one per process, in process order
        self.parent: str | None = None  # the last completed turn: the next message's parent
        self.last: tuple[str, str, str] | None = None  # the last turn: (id, status, text)
        self.sent = 0

    async def open(self) -> None:
        self.sockets = [await self.connect(process)
                        for process in range(len(self.team.ports))]

    async def connect(self, process: int) -> Socket:
        return await Socket.open(self.team, self.name, process, self.member, self.report,
                                 self.started)

    async def run(self, until: float) -> None:
        loop = asyncio.get_running_loop()
        # Each chat starts at another place in the rounds: every kind comes early on.
        rounds = itertools.islice(itertools.cycle(ROUNDS),
                                  self.index * len(ROUNDS) // self.plan.chats, None)
        while loop.time() + self.plan.pause[1] < until:
            await asyncio.sleep(self.random.uniform(*self.plan.pause))
            if not all(sock.is_open for sock in self.sockets):
                return  # recorded as an unexpected close; this chat stops here
            name = next(rounds)
            self.report.rounds[name] += 1
            try:
                await getattr(self, f"round_{name}")()
            except (OSError, RuntimeError, websockets.WebSocketException) as exc:
                # a socket that would not open or closed under the round: this chat stops
                self.report.fail(f"{self.name}: {name} round: {type(exc).__name__}: {exc}")
                return

    async def close(self) -> None:
        for sock in self.sockets:
            if sock.is_open:
                await sock.close()

    # -- rounds ------------------------------------------------------------------------

    async def round_send(self) -> None:
        sender = self.random.randrange(len(self.sockets))
        started = await self.start(sender)
        if started:
            await self.finish(*started, self.sockets)

    async def round_stop(self) -> None:
        """Stopped from the socket on another process once its reply shows text."""
        sender = self.random.randrange(len(self.sockets))
        other = self.sockets[(sender + 1) % len(self.sockets)]
        started = await self.start(sender)
        if not started:
            return
        turn_id, _ = started
        if await other.until(lambda: other.screen.text(turn_id) != "", self.plan.turn_timeout):
            await other.send({"type": "stop", "turn_id": turn_id})
        await self.finish(*started, self.sockets, stopped=True)

    async def round_reconnect(self) -> None:
        """Closed and opened again between replies: the snapshot ends with the last turn."""
        process = self.random.randrange(len(self.sockets))
        await self.sockets[process].close()
        sock = self.sockets[process] = await self.connect(process)
        if self.last is None:
            return
        turn_id, status, text = self.last
        if (sock.screen.status(turn_id), sock.screen.text(turn_id)) != (status, text):
            self.report.bad_snapshots += 1
            self.report.failures.append(
                f"{self.name}: after a reconnect to process {process} the snapshot shows "
                f"turn {turn_id} as {sock.screen.status(turn_id)!r}, not {status!r}")

    async def round_rejoin(self) -> None:
        """A socket leaves once the reply shows text and joins again: it still gets all."""
        sender = self.random.randrange(len(self.sockets))
        process = self.random.randrange(len(self.sockets))
        started = await self.start(sender)
        if not started:
            return
        turn_id, _ = started
        leaving = self.sockets[process]
        await leaving.until(lambda: leaving.screen.text(turn_id) != "", self.plan.turn_timeout)
        await leaving.close()
        self.sockets[process] = await self.connect(process)
        await self.finish(*started, self.sockets)

    # -- one turn ----------------------------------------------------------------------

    async def start(self, sender: int) -> tuple[str, str] | None:
        """Send a message from the socket on process `sender`: (turn id, text), or None."""
        self.sent += 1
        text = f"soak {self.name} message {self.sent}"
        client_id = str(uuid.uuid4())
        sock = self.sockets[sender]
        await sock.send({"type": "send", "client_id": client_id, "text": text,
                         "parent_id": self.parent})
        if not await sock.until(lambda: client_id in sock.by_client or client_id in sock.errors,
                                self.plan.turn_timeout):
            self.report.fail(f"{self.name}: no turn.created for {text!r} on process {sender}")
            return None
        if client_id in sock.errors:
            self.report.fail(f"{self.name}: {text!r} refused: {sock.errors[client_id]}")
            return None
        return sock.by_client[client_id], text

    async def finish(self, turn_id: str, text: str, sockets: list[Socket],
                     stopped: bool = False) -> None:
        """Every socket shows the whole reply (or, stopped, the same beginning of it)."""
        whole = "".join(text_deltas("Echo: " + text, self.plan.deltas))
        done = await asyncio.gather(*(sock.until_done(turn_id, self.plan.turn_timeout)
                                      for sock in sockets))
        seen = [(sock.screen.status(turn_id), sock.screen.text(turn_id)) for sock in sockets]
        if not all(done):
            late = [sock.process for sock, ok in zip(sockets, done, strict=True) if not ok]
            self.report.fail(f"{self.name}: turn {turn_id} did not end on processes {late} "
                             f"within {self.plan.turn_timeout:g} s (seen: {seen})")
            return
        status, shown = seen[0]
        if any(other != seen[0] for other in seen[1:]):
            self.report.fail(f"{self.name}: turn {turn_id} differs between sockets: {seen}")
        elif status == "completed" and shown == whole:
            self.report.turns["completed"] += 1
            self.parent = turn_id
        elif stopped and status == "cancelled" and whole.startswith(shown):
            self.report.turns["stopped"] += 1
        else:
            self.report.fail(f"{self.name}: turn {turn_id} ended {status!r} with "
                             f"{len(shown)} of {len(whole)} characters")
        self.last = (turn_id, status, shown)
