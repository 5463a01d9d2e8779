"""Drive one turn: backend events -> TurnState -> database checkpoints and websocket frames.

TurnState (turn_state.py) is the pure part: it folds the events and numbers the frames.
The run here does the I/O around it. A run is an asyncio task of the server process, not
of any websocket: closing the tab does not stop it. It loads its own conversation and
the turn's parent when it starts (the whole branch only for a request that replays it),
and resolves the request's files (media.py) before it streams. Frames go to the
conversation's channel-layer group, numbered per turn; deltas that arrive within
FRAME_WINDOW share one frame. The database is written at each step boundary, at most
once a CHECKPOINT_INTERVAL inside a step (checkpoints.py batches these for all turns),
and at the end — never per token.
"""

import asyncio
import copy
import logging
import uuid
from collections import Counter, deque

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chatsite import logs

from . import checkpoints, media, payloads, selectors, services
from .backends import Backend, BackendUnavailable, backend_for
from .generated import carries_media, store_media
from .interactions import APIError, InteractionsClient, InteractionsError
from .interactions.errors import NotFoundError
from .interactions.events import StepStop
from .models import Conversation, Turn
from .protocol import dumps, envelope, group_name, runners_group_name
from .turn_state import TurnState

logger = logging.getLogger(__name__)

FRAME_WINDOW = 0.03
CHECKPOINT_INTERVAL = 1.0

# Turns running in this process, by turn id.
RUNS: dict[str, "TurnRun"] = {}

def start(turn: Turn) -> "TurnRun":
    """Start generating a reply to a freshly created turn; returns at once.

    The turn shows in `live_turns` from now on; the run loads what the request needs.
    """
    run = TurnRun(turn)
    RUNS[run.turn_id] = run
    run.task = asyncio.create_task(run.run(), name=f"turn {run.turn_id}")
    return run


async def stop(conversation_id: uuid.UUID | str, turn_id: str) -> None:
    """Stop a turn wherever it runs: here, or in another server process."""
    run = RUNS.get(turn_id)
    if run is not None:
        run.stop()
        return
    await get_channel_layer().group_send(
        runners_group_name(conversation_id), {"type": "turn.stop", "turn_id": turn_id})


async def request_sync(conversation_id: uuid.UUID | str, reply_channel: str) -> None:
    """Ask other processes for the live state of their running turns of a conversation."""
    await get_channel_layer().group_send(
        runners_group_name(conversation_id),
        {"type": "turn.sync.request", "conversation_id": str(conversation_id),
         "reply_channel": reply_channel})


def live_turns(conversation_id: uuid.UUID | str) -> list[dict]:
    """The live state of the conversation's turns running in this process."""
    conversation_id = str(conversation_id)
    return [run.live_state() for run in list(RUNS.values())
            if run.conversation_id == conversation_id]


def _load(turn: Turn) -> tuple[Conversation, Turn | None, list[Turn] | None]:
    """The turn's conversation as it is now and its parent; the branch (root first, up to
    the parent) only when the request replays it: chaining needs only the parent."""
    conversation = Conversation.objects.get(pk=turn.conversation_id)
    parent = Turn.objects.get(pk=turn.parent_id) if turn.parent_id else None
    ancestors = _branch(parent) if payloads.replays(conversation, parent) else None
    return conversation, parent, ancestors


def _branch(parent: Turn | None) -> list[Turn]:
    return selectors.turn_ancestors(turn=parent) if parent is not None else []


class TurnRun:
    def __init__(self, turn: Turn):
        self.turn = turn
        self.turn_id = str(turn.pk)
        self.conversation_id = str(turn.conversation_id)
        self.group = group_name(self.conversation_id)
        self.layer = get_channel_layer()
        self.state = TurnState(self.turn_id, selectors.turn_to_dict(turn))
        self.task: asyncio.Task | None = None
        self.backend: Backend | None = None
        self._stopped = False
        self._stream_task: asyncio.Task | None = None
        self._outbox: deque[str] = deque()
        self._send_lock = asyncio.Lock()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._last_checkpoint = 0.0
        self._checkpointed_seq = 0
        self.previous_interaction_id = turn.previous_interaction_id  # what was really sent
        # While the outcome is being written: the turn as sockets that connect meanwhile
        # must see it (not yet ended; the last frame, which reaches them too, ends it).
        self._before_outcome: dict | None = None
        self.owner_id = None  # of the conversation: its generated files are the owner's
        self._media = Counter()  # generated media so far, by kind (image-1.png, image-2.png)
        self._background: set[asyncio.Task] = set()

    # -- the run ----------------------------------------------------------------------

    async def run(self) -> None:
        logs.bind_turn(self.turn_id, self.conversation_id)  # this task's log lines carry them
        # The first timed checkpoint comes a CHECKPOINT_INTERVAL in, not with the first delta.
        self._last_checkpoint = asyncio.get_running_loop().time()
        try:
            await self._run()
        except asyncio.CancelledError:
            if not self._stopped:
                raise
            self.state.cancel()
        except Conversation.DoesNotExist:  # deleted (another tab) before the run started
            logger.info("turn %s: its conversation is gone; nothing to run", self.turn_id)
            self.state.cancel()
        except BackendUnavailable as exc:
            self.state.fail("unavailable", str(exc), retryable=False)
        except InteractionsError as exc:
            self.state.fail(getattr(exc, "code", None) or type(exc).__name__, str(exc),
                            retryable=getattr(exc, "retryable", False))
        except Exception:
            logger.exception("turn %s failed", self.turn_id)
            self.state.fail("internal", "Something went wrong on the server while "
                            "generating this reply.", retryable=True)
        finally:
            await self._finish()

    async def _run(self) -> None:
        await self.layer.group_add(runners_group_name(self.conversation_id), await hub_channel())
        conversation, parent, ancestors = await database_sync_to_async(_load)(self.turn)
        self.owner_id = conversation.owner_id
        self.backend = backend_for(conversation.model, user=conversation.owner_id)
        body = payloads.request_body(conversation, self.turn, parent, ancestors)
        self.state.schema = payloads.sent_schema(body)
        self.previous_interaction_id = body.get("previous_interaction_id", "")
        try:
            await self._send(conversation, body)
        except NotFoundError:
            # The previous interaction expired upstream: replay the branch instead.
            if not self.previous_interaction_id or self.state.assembler.interaction_id:
                raise
            self.previous_interaction_id = ""
            ancestors = await database_sync_to_async(_branch)(parent)
            await self._send(conversation, payloads.request_body(
                conversation, self.turn, parent, ancestors, replay=True))
        self.state.end_of_stream()

    async def _send(self, conversation: Conversation, body: dict) -> None:
        """Resolve the body's files, then stream it. Files the upstream says it no longer
        has (expired early, deleted) are uploaded again, once."""
        resolved = await self._resolve(conversation, body)
        try:
            await self._stream(resolved.body)
        except APIError as exc:
            gone = media.gone(exc, resolved)
            if not gone or self.state.assembler.interaction_id:
                raise
            await database_sync_to_async(services.attachments_forget_remote)(
                attachment_ids=gone)
            await self._stream((await self._resolve(conversation, body)).body)

    async def _resolve(self, conversation: Conversation, body: dict) -> media.Resolved:
        # The offline model reads no media: nothing to upload for it.
        client = self.backend if isinstance(self.backend, InteractionsClient) else None
        resolved = await media.resolve(body, owner_id=conversation.owner_id, client=client,
                                       progress=self._show)
        self._show(None)
        return resolved

    def _show(self, detail: str | None) -> None:
        """Say at once what the turn waits for before the model starts (an upload)."""
        if self.state.detail != detail:
            self.state.detail = detail
            self.flush()
            self._spawn(self._drain())

    async def _stream(self, body: dict) -> None:
        self._stream_task = asyncio.create_task(self._consume(body))
        try:
            await self._stream_task
        finally:
            self._stream_task = None  # a stop from now on cancels the run itself

    async def _consume(self, body: dict) -> None:
        feed = self.state.feed
        async for event in self.backend.stream(body):
            if carries_media(event):
                # Saved before it is folded, and before the next event is read: nothing the
                # state, a frame or a checkpoint holds has the bytes, and nothing overtakes it.
                event = await store_media(event, owner_id=self.owner_id, numbers=self._media)
            feed(event)
            boundary = isinstance(event, StepStop)
            if boundary or self._flush_due():
                self.flush()
                if boundary:
                    self._checkpoint()
                await self._drain()
            else:
                self._schedule_flush()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._stream_task is not None:
            self._stream_task.cancel()
        elif self.task is not None:
            self.task.cancel()
        interaction_id = self.state.assembler.interaction_id
        if interaction_id and self.backend is not None:
            self._spawn(self._cancel_upstream(interaction_id))

    async def _cancel_upstream(self, interaction_id: str) -> None:
        try:
            await self.backend.cancel(interaction_id)
        except Exception as exc:  # only background runs can be cancelled upstream
            logger.debug("upstream cancel of %s: %s", interaction_id, exc)

    async def _finish(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        state = self.state
        assembler = state.assembler
        try:
            # The database first: a client told the turn is over may chain onto it at once.
            self.flush()  # pending changes go out as an ordinary frame, the outcome after
            self._before_outcome = state.state()
            text = state.last_frame()
            await checkpoints.writer().settle(self.turn_id)
            await database_sync_to_async(services.turn_finish)(
                turn_id=self.turn_id, status=state.status, steps=assembler.steps,
                seq=state.seq, usage=assembler.usage, error=state.error,
                last_event_id=assembler.last_event_id or "",
                interaction_id=assembler.interaction_id or "", output_check=state.output_check)
            logger.info("turn %s %s%s", self.turn_id, state.status,
                        f" ({state.error['code']})" if state.error else "")
            if text is not None:
                self._outbox.append(text)
            await self._drain()
            self._before_outcome = None
        finally:
            RUNS.pop(self.turn_id, None)
            if not any(r.conversation_id == self.conversation_id for r in RUNS.values()):
                await self.layer.group_discard(runners_group_name(self.conversation_id),
                                               await hub_channel())

    # -- frames -----------------------------------------------------------------------

    def _flush_due(self) -> bool:
        """A change after a quiet spell goes out at once; a burst waits for the window."""
        return (self._flush_handle is None
                and asyncio.get_running_loop().time() >= self._last_flush + FRAME_WINDOW)

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + FRAME_WINDOW - loop.time())
        self._flush_handle = loop.call_later(delay, self._flush_later)

    def _flush_later(self) -> None:
        self._flush_handle = None
        self.flush()
        self._spawn(self._drain())

    def flush(self) -> None:
        """Put what changed since the last frame into one frame, in the outbox."""
        text, content = self.state.next_frame()
        now = asyncio.get_running_loop().time()
        if text is not None:
            self._outbox.append(text)
            if content:
                self._last_flush = now
        due = now - self._last_checkpoint >= CHECKPOINT_INTERVAL
        if due and self.state.seq != self._checkpointed_seq:
            self._checkpoint()

    async def _drain(self) -> None:
        """Send the outbox: frames leave in the order they were numbered, whatever the
        layer's latency (one drain at a time)."""
        async with self._send_lock:
            while self._outbox:
                # Taken off only once sent: a stop cancels the stream task, maybe half-way
                # through a send (with Redis, group_send awaits several round trips), and
                # the next drain must send that frame again (clients drop a duplicate).
                await self.layer.group_send(self.group, envelope(self._outbox[0]))
                self._outbox.popleft()

    def live_state(self) -> dict:
        """The turn as it stands now, for a socket that just connected.

        What is pending is numbered (and sent) first, so the state and its seq agree and
        the socket misses nothing that follows.
        """
        if self._before_outcome is not None:
            return self._before_outcome
        self.flush()
        self._spawn(self._drain())
        return self.state.state()

    # -- database ---------------------------------------------------------------------

    def _checkpoint(self) -> None:
        """Queue a write of the steps as of the last frame."""
        state = self.state
        if state.finished:  # the final write covers it; a later checkpoint would undo it
            return
        assembler = state.assembler
        self._last_checkpoint = asyncio.get_running_loop().time()
        self._checkpointed_seq = state.seq
        checkpoints.writer().put(self.turn_id, {
            "steps": copy.deepcopy(assembler.steps), "seq": state.seq,
            "last_event_id": assembler.last_event_id or "",
            "interaction_id": assembler.interaction_id or "",
            "previous_interaction_id": self.previous_interaction_id,
            "status": Turn.Status.IN_PROGRESS})

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task


# -- the hub: this process's mailbox for runs started elsewhere ------------------------

_hub: dict[asyncio.AbstractEventLoop, tuple[str, asyncio.Task]] = {}


async def hub_channel() -> str:
    """This process's channel for stop and sync requests about its runs."""
    loop = asyncio.get_running_loop()
    if loop not in _hub:
        _hub.clear()  # one loop per process when serving; tests run a loop each
        layer = get_channel_layer()
        # The default prefix: Redis reads every process-local channel through one queue
        # named by it, so a channel with another prefix would never be read.
        channel = await layer.new_channel()
        _hub[loop] = (channel, asyncio.create_task(_serve_hub(layer, channel),
                                                   context=logs.unbound()))
    return _hub[loop][0]


async def _serve_hub(layer, channel: str) -> None:
    while True:
        message = await layer.receive(channel)
        try:
            if message["type"] == "turn.stop":
                run = RUNS.get(message["turn_id"])
                if run is not None:
                    run.stop()
            elif message["type"] == "turn.sync.request":
                for state in live_turns(message["conversation_id"]):
                    text = dumps({"type": "turn.sync", "turn": state})
                    await layer.send(message["reply_channel"], envelope(text))
        except Exception:
            logger.exception("runner hub could not handle %s", message.get("type"))
