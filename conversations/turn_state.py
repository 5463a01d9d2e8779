"""One turn's live state: backend events in, numbered `turn.update` frames (built by
protocol.turn_update) and the turn out.

Pure: no I/O, no clock, no asyncio. The runner (runner.py) feeds it events, decides when a
frame goes out (the coalescing window is time, so it is the runner's) and where it goes.
The frame format is documented in docs/websocket.md.
"""

import copy
from collections.abc import Callable

from .interactions import Assembler
from .interactions.events import Event
from .models import RUNNING_STATUSES, Turn
from .options import check_output
from .protocol import turn_update

# A reply that ends like this is checked against its schema (a failed or stopped one is
# already marked as such).
CHECKED_STATUSES = (Turn.Status.COMPLETED, Turn.Status.INCOMPLETE)


class TurnState:
    """The assembler, the turn's one status and one error, and the frames' numbering.

    The outcome (a final status, an error) goes out once, in the last frame (`last_frame`),
    which the runner sends only once the database has it: a client told "completed" may
    chain onto the turn at once.
    """

    def __init__(self, turn_id: str, base: dict):
        self.turn_id = turn_id
        self.base = base  # what a snapshot shows, minus the live fields
        self.assembler = Assembler()
        # The hot path: per event, the assembler folds it and nothing else happens here.
        self.feed: Callable[[Event], None] = self.assembler.feed
        self.seq = 0  # of the last numbered frame
        self.error: dict | None = None
        # What the turn waits for before the model starts ("Uploading cat.png (40%)…").
        self.detail: str | None = None
        self.schema: dict | None = None  # the JSON Schema the request asked the reply to follow
        self.output_check: dict | None = None  # how the reply fared against it, at the end
        self.finished = False  # the last frame is numbered: no frame, no checkpoint after it
        self._outcome: str | None = None  # a status the run decided (failed, cancelled, …)
        self._sent: dict = {"status": self.status}  # live fields as the last frames left them
        self._shown_steps: set[int] = set()  # step indices some frame has carried

    # -- what happens to the turn -------------------------------------------------------

    @property
    def status(self) -> str:
        """The turn's one status: upstream's while it streams, until the run decides it."""
        return self._outcome or self.assembler.status or Turn.Status.QUEUED

    def end_of_stream(self) -> None:
        """The stream ended: what arrived is the reply, unless an error arrived with it."""
        if self.assembler.error and not self.error:
            self.error = dict(self.assembler.error)
        if self.status in RUNNING_STATUSES:  # no final status came
            self._outcome = Turn.Status.COMPLETED if not self.error else Turn.Status.FAILED

    def fail(self, code: str, message: str, *, retryable: bool) -> None:
        self._outcome = Turn.Status.FAILED
        self.error = {"code": str(code), "message": message, "retryable": retryable}

    def cancel(self) -> None:
        self._outcome = Turn.Status.CANCELLED

    # -- frames -------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Whether the steps changed since the last numbered frame."""
        return bool(self.assembler.changed)

    def next_frame(self) -> tuple[str | None, bool]:
        """What changed since the last frame, as one numbered frame (None: nothing did), and
        whether it carries content, which opens the coalescing window: a frame that just
        announces a status or new steps must not hold back the first words after it."""
        ops = self.assembler.take_changes()
        fields = {}
        sent = self._sent
        for name, value in self._live_fields().items():
            if sent.get(name) != value:
                fields[name] = sent[name] = value
        if not ops and not fields:
            return None, False
        shown = self._shown_steps
        content = any(op[0] == "text" or op[1] in shown for op in ops)
        shown.update(op[1] for op in ops)
        self.seq += 1
        return turn_update(self.turn_id, self.seq, ops, fields), content

    def last_frame(self) -> str | None:
        """The frame that ends the turn, with its outcome (None: nothing new to say)."""
        self.finished = True
        if self.schema is not None and self.status in CHECKED_STATUSES:
            self.output_check = check_output(self.assembler.steps, self.schema)
        return self.next_frame()[0]

    def _live_fields(self) -> dict:
        status = self.status
        running = self.finished or status in RUNNING_STATUSES
        return {"status": status if running else Turn.Status.IN_PROGRESS,
                "usage": self.assembler.usage, "error": self.error if self.finished else None,
                "interaction_id": self.assembler.interaction_id or "",
                "detail": None if self.finished else self.detail,
                "output_check": self.output_check}

    def state(self) -> dict:
        """The turn as of the last numbered frame, for a socket that just connected.

        Its steps and seq must agree, so nothing may be pending: number it first.
        """
        if self.pending:
            raise RuntimeError(f"turn {self.turn_id}: number the pending changes first")
        state = dict(self.base, steps=copy.deepcopy(self.assembler.steps), seq=self.seq)
        state.update(self._sent)
        return state
