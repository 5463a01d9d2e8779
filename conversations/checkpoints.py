"""Checkpoints of the turns running in this process, written together.

Each running turn saves its progress at step boundaries and about once a second. One
writer per process writes every checkpoint pending at that moment in one transaction
and one database hop, instead of a hop and a commit per turn: with a few hundred
streams, the hops alone kept the database thread busy and new turns waited behind them.
"""

import asyncio

from channels.db import database_sync_to_async

from chatsite import logs

from . import services


class CheckpointWriter:
    def __init__(self) -> None:
        self.pending: dict[str, dict] = {}
        self._task: asyncio.Task | None = None
        self._batch: dict[str, dict] = {}
        self._written: asyncio.Future | None = None

    def put(self, turn_id: str, fields: dict) -> None:
        """Queue a turn's checkpoint; a newer one replaces one not yet written."""
        self.pending[turn_id] = fields
        if self._task is None or self._task.done():
            # One writer for every turn: its lines are none of theirs.
            self._task = asyncio.create_task(self._write(), context=logs.unbound())

    async def settle(self, turn_id: str) -> None:
        """Before a turn's final write: drop its queued checkpoint, wait out one in flight."""
        self.pending.pop(turn_id, None)
        if turn_id in self._batch and self._written is not None:
            await asyncio.shield(self._written)

    async def _write(self) -> None:
        while self.pending:
            self._batch, self.pending = self.pending, {}
            self._written = asyncio.get_running_loop().create_future()
            try:
                await database_sync_to_async(services.turns_checkpoint)(batch=self._batch)
            finally:
                self._written.set_result(None)
                self._batch = {}


_writers: dict[asyncio.AbstractEventLoop, CheckpointWriter] = {}


def writer() -> CheckpointWriter:
    """This process's writer (one per event loop: tests run a loop each)."""
    loop = asyncio.get_running_loop()
    if loop not in _writers:
        _writers.clear()  # a finished loop's writer is of no use any more
        _writers[loop] = CheckpointWriter()
    return _writers[loop]
