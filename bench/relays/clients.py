"""A benchmark client worker: many websocket conversations in one process, results as JSON.

Run by bench_relay.py as `python -m bench.relays.clients`; it talks JSON lines over
stdin/stdout. In: the job `{"urls", "headers", "deltas", "timeout"}`. Out: `{"ready": n}`
once every socket has its snapshot. In: `{"start_at": wall time, "spread": s}`; each socket
sends its `send` frame at `start_at` plus a random part of `spread`, then reads frames
(applying ops as docs/websocket.md says) until its turn ends. Out: `{"finished": true}` when
every turn has ended, then `{"results": [...]}`, one per socket, after closing them.

Every text delta carries "[seq:emit time]" (the fake upstream's `stamp_text`). A stamp's
latency is its first appearance in the assembled text minus its emit time; lost and
duplicated deltas are read off the final text. A stamp may be split across frames, so the
text is scanned per block, from just after the last complete stamp.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect

STAMP = re.compile(r"\[(\d+):(\d+\.\d+)\]")
ENDED = {"completed", "failed", "cancelled", "incomplete", "requires_action"}
CONNECTS_AT_ONCE = 32  # a listen backlog overflow would add a 1 s SYN retry to the figures


class TurnReader:
    """One conversation's turn as the client sees it: steps, stamps and timings."""

    def __init__(self) -> None:
        self.blocks: dict[tuple[int, int], str] = {}  # (step, block) -> text
        self.scanned: dict[tuple[int, int], int] = {}  # how far each block was scanned
        self.steps: set[int] = set()
        self.first_seen: dict[int, float] = {}  # stamp seq -> receipt time
        self.latencies: list[float] = []  # ms
        self.turn_id: str | None = None
        self.seq = 0
        self.gaps = 0  # frames whose seq was not the last one + 1
        self.frames = 0
        self.status: str | None = None
        self.sent_at = self.first_at = self.done_at = 0.0
        self.error: str | None = None

    def apply(self, frame: dict, now: float) -> None:
        if frame.get("turn_id") != self.turn_id and self.turn_id is not None:
            return
        self.turn_id = frame["turn_id"]
        self.frames += 1
        if frame["seq"] != self.seq + 1:
            self.gaps += 1
        self.seq = max(self.seq, frame["seq"])
        for op in frame["ops"]:
            if op[0] == "text":
                _, i, b, text = op
                self.steps.add(i)
                self.blocks[i, b] = self.blocks.get((i, b), "") + text
                self.scan(i, b, now)
            elif op[0] == "step":
                self.set_step(op[1], op[2], now)
        self.status = frame.get("status", self.status)
        if self.status in ENDED:
            self.done_at = now

    def set_step(self, i: int, step: dict, now: float) -> None:
        self.steps.add(i)
        for key in [k for k in self.blocks if k[0] == i]:
            del self.blocks[key], self.scanned[key]
        for b, block in enumerate(step.get("content") or []):
            if isinstance(block, dict) and block.get("type") == "text":
                self.blocks[i, b] = block.get("text", "")
                self.scan(i, b, now)

    def scan(self, i: int, b: int, now: float) -> None:
        """Record the stamps completed since the last scan of this block."""
        text, end = self.blocks[i, b], self.scanned.get((i, b), 0)
        for match in STAMP.finditer(text, end):
            seq = int(match[1])
            if seq not in self.first_seen:
                self.first_seen[seq] = now
                self.latencies.append((now - float(match[2])) * 1000)
                if not self.first_at:
                    self.first_at = now
            end = match.end()
        self.scanned[i, b] = end

    def result(self, deltas: int) -> dict:
        counts = Counter(int(m[1]) for text in self.blocks.values() for m in STAMP.finditer(text))
        received = sum(1 for seq in counts if 1 <= seq <= deltas)
        return {
            "latencies": [round(x, 3) for x in self.latencies],
            "received": received,
            "lost": deltas - received,
            "dup": sum(n - 1 for n in counts.values()),
            "status": self.status,
            "steps": len(self.steps),
            "frames": self.frames,
            "gaps": self.gaps,
            "first_delta_ms": (self.first_at - self.sent_at) * 1000 if self.first_at else None,
            "seconds": self.done_at - self.sent_at if self.done_at else None,
            "error": self.error,
        }


async def open_socket(url: str, headers: dict, gate: asyncio.Semaphore) -> ClientConnection:
    if "Origin" in headers:  # a browser's page is on the server it connects to
        parts = urlsplit(url)
        headers = {**headers, "Origin": f"http://{parts.netloc}"}
    async with gate:
        ws = await connect(url, additional_headers=headers, compression=None, proxy=None,
                           open_timeout=30, max_size=None, max_queue=None)
    snapshot = json.loads(await ws.recv())
    if snapshot.get("type") != "snapshot":
        raise RuntimeError(f"expected a snapshot, got {snapshot.get('type')!r}")
    return ws


async def converse(ws: ClientConnection, reader: TurnReader, send_at: float) -> None:
    await asyncio.sleep(max(0.0, send_at - time.time()))
    reader.sent_at = time.time()
    await ws.send(json.dumps({"type": "send", "client_id": str(uuid.uuid4()), "text": "go",
                              "parent_id": None}))
    while reader.done_at == 0.0:
        message = await ws.recv()
        now = time.time()
        frame = json.loads(message)
        if frame.get("type") == "turn.update":
            reader.apply(frame, now)
        elif frame.get("type") == "error":
            reader.error = frame.get("message")
            return


async def run_job(job: dict, commands: asyncio.StreamReader) -> list[dict]:
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    opened = await asyncio.gather(*(open_socket(url, job["headers"], gate)
                                    for url in job["urls"]), return_exceptions=True)
    readers = [TurnReader() for _ in opened]
    emit({"ready": sum(not isinstance(ws, BaseException) for ws in opened)})
    start = json.loads(await commands.readline())
    tasks = {}
    for ws, reader in zip(opened, readers, strict=True):
        if isinstance(ws, BaseException):
            reader.error = f"connect failed: {ws!r}"
            continue
        send_at = start["start_at"] + random.random() * start["spread"]
        tasks[asyncio.create_task(converse(ws, reader, send_at))] = reader
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=job["timeout"])
        for task, reader in tasks.items():
            if task in pending:
                task.cancel()
                reader.error = reader.error or "timed out"
            elif task.exception() is not None:
                reader.error = repr(task.exception())
    emit({"finished": True})  # before closing: the driver's CPU window ends here
    sockets = [ws for ws in opened if not isinstance(ws, BaseException)]
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return [reader.result(job["deltas"]) for reader in readers]


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    job = json.loads(await commands.readline())
    emit({"results": await run_job(job, commands)})


if __name__ == "__main__":
    asyncio.run(main())
