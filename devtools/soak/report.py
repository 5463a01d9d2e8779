"""What happened during the soak, and what counts as a failure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from devtools.soak.memory import Memory
from devtools.soak.plan import Plan


@dataclass
class Close:
    """A socket closed that the soak did not close."""

    socket: str  # "idle 3", "chat 1"
    process: int
    code: int | None
    reason: str
    at: float  # seconds into the soak


@dataclass
class Report:
    plan: Plan
    processes: int
    sockets_opened: int = 0
    closed_by_us: int = 0
    unexpected: list[Close] = field(default_factory=list)
    rounds: Counter[str] = field(default_factory=Counter)  # plan.ROUNDS done, by name
    turns: Counter[str] = field(default_factory=Counter)  # completed, stopped, failed
    failures: list[str] = field(default_factory=list)  # what went wrong with each failed turn
    gaps: int = 0  # frames that skipped a seq, on sockets that saw their turn created
    syncs: int = 0  # snapshots a rejoined socket had to ask for to fill a gap
    bad_snapshots: int = 0  # snapshots after a reconnect that did not end with the last turn
    idle_frames: int = 0  # frames an idle socket received after its snapshot
    exited: dict[int, str] = field(default_factory=dict)  # process -> how and when it ended
    samples: list[tuple[float, list[int]]] = field(default_factory=list)  # (s, RSS each)
    cpu: list[tuple[float, list[float]]] = field(default_factory=list)  # (s, CPU s each)
    elapsed: float = 0.0

    def fail(self, message: str) -> None:
        self.turns["failed"] += 1
        self.failures.append(message)


def problems(report: Report, memory: list[Memory] | None, max_growth: float | None) -> list[str]:
    """Why the soak failed (empty: it passed). Memory is judged only with `max_growth`
    (MiB per minute) and figures for the second half of the run."""
    found = [f"{len(report.unexpected)} unexpected socket closes"] if report.unexpected else []
    if report.turns["failed"]:
        found.append(f"{report.turns['failed']} turns failed")
    if report.gaps:
        found.append(f"{report.gaps} frames skipped a seq")
    if report.bad_snapshots:
        found.append(f"{report.bad_snapshots} snapshots after a reconnect were wrong")
    if report.idle_frames:
        found.append(f"idle sockets received {report.idle_frames} frames")
    found += [f"daphne process {n}: {how}" for n, how in report.exited.items()]
    if not report.turns["completed"]:
        found.append("no turn completed")
    if max_growth is not None:
        for process, figures in enumerate(memory or []):
            if figures.slope is None:
                found.append(f"process {process}: too few memory samples to judge growth")
            elif figures.slope > max_growth:
                found.append(f"process {process}: memory grew {figures.slope:.2f} MiB/min "
                             f"(limit {max_growth:g})")
    return found
