"""A websocket client's view of a conversation's turns, kept as docs/websocket.md says a page
keeps it: ops applied in `seq` order, frames already included dropped, a gap held until a
`turn.sync` or a fresh snapshot fills it."""

from __future__ import annotations

from typing import Any

FINAL = {"completed", "failed", "cancelled", "incomplete", "requires_action"}
SNAPSHOTS = {"snapshot", "snapshot.part", "branch", "branch.part", "history", "history.part"}


def apply_ops(steps: list[dict], ops: list) -> None:
    """Apply `turn.update` ops as docs/websocket.md says a client does."""
    for op in ops:
        if op[0] == "step":
            _, index, step = op
            steps.extend({} for _ in range(index + 1 - len(steps)))
            steps[index] = step
        elif op[0] == "text":
            _, index, block, text = op
            content = steps[index].setdefault("content", [])
            if block == len(content):
                content.append({"type": "text", "text": ""})
            content[block]["text"] += text
        else:
            raise AssertionError(f"unknown op {op!r}")


def text_of(steps: list[dict]) -> str:
    return "".join(block.get("text", "") for step in steps if step.get("type") == "model_output"
                   for block in step.get("content", []) if block.get("type") == "text")


class Screen:
    """The turns one socket has seen. `gaps` counts frames that skipped a `seq` of a turn
    whose `turn.created` this socket received: it was connected all along, so nothing may be
    missing. A socket that joined mid-reply fills in from `turn.sync` (or a `sync`)."""

    def __init__(self) -> None:
        self.turns: dict[str, dict[str, Any]] = {}  # id -> {"steps", "seq", "status"}
        self.pending: dict[str, dict[int, dict]] = {}  # id -> frames past a gap, by seq
        self.watched: set[str] = set()  # turns created while this socket was open
        self.gaps = 0

    def feed(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind in SNAPSHOTS:
            for turn in frame["turns"]:
                self._restore(turn)
        elif kind == "turn.created":
            self.watched.add(frame["turn"]["id"])
            self._restore(frame["turn"])
        elif kind == "turn.sync":
            self._restore(frame["turn"])
        elif kind == "turn.update":
            self._update(frame)

    def _restore(self, turn: dict) -> None:
        """A whole turn (snapshot, creation, sync): taken when it is newer than ours."""
        known = self.turns.get(turn["id"])
        if known is None or turn["seq"] >= known["seq"]:
            self.turns[turn["id"]] = {"steps": [dict(step) for step in turn["steps"]],
                                      "seq": turn["seq"], "status": turn["status"]}
            self._drain(turn["id"])

    def _update(self, frame: dict) -> None:
        turn_id, seq = frame["turn_id"], frame["seq"]
        turn = self.turns.get(turn_id)
        if turn is None or seq <= turn["seq"]:  # another branch's, or already included
            return
        if seq > turn["seq"] + 1 and turn_id in self.watched:
            self.gaps += 1
        self.pending.setdefault(turn_id, {})[seq] = frame
        self._drain(turn_id)

    def _drain(self, turn_id: str) -> None:
        turn, waiting = self.turns[turn_id], self.pending.get(turn_id, {})
        for seq in [seq for seq in waiting if seq <= turn["seq"]]:
            del waiting[seq]
        while (frame := waiting.pop(turn["seq"] + 1, None)) is not None:
            apply_ops(turn["steps"], frame["ops"])
            turn["seq"] = frame["seq"]
            turn["status"] = frame.get("status", turn["status"])

    def stuck(self, turn_id: str) -> bool:
        """Frames wait past a gap: the page would ask for a `sync`."""
        return bool(self.pending.get(turn_id))

    def done(self, turn_id: str) -> bool:
        turn = self.turns.get(turn_id)
        return turn is not None and turn["status"] in FINAL and not self.stuck(turn_id)

    def status(self, turn_id: str) -> str | None:
        turn = self.turns.get(turn_id)
        return None if turn is None else turn["status"]

    def text(self, turn_id: str) -> str:
        turn = self.turns.get(turn_id)
        return "" if turn is None else text_of(turn["steps"])
