"""The benchmark's processes: starting and stopping them, and reading their CPU from /proc.

The fake upstream, each step's relay server (started by bench/relays/step.py), the client
workers (bench/relays/clients.py, in processes of their own so that the clients do not share
the server's GIL) and, with --profile, py-spy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from devtools.ports import stop  # noqa: F401 (the benchmarks import these from here)
from devtools.procfs import CLOCK_TICKS, cpu_seconds  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
SPREAD = 0.05  # sends are spread over one delta interval: the streams' phases are uniform


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def cpu_by_command(commands: tuple[str, ...]) -> dict[int, tuple[str, float]]:
    """(command name, CPU seconds so far) of every process whose command name is one of
    `commands` (the database and Redis servers: not ours, but /proc shows them)."""
    found = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
            if name in commands:
                found[int(comm.parent.name)] = name, cpu_seconds(int(comm.parent.name))
        except OSError:  # gone meanwhile
            continue
    return found


class FakeUpstream:
    """`python -m devtools.fake_upstream` in its own process."""

    def __init__(self, deltas: int, interval: float, log: Path):
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "devtools.fake_upstream", "--port", "0", "--stamp-text",
             "--deltas", str(deltas), "--delta-interval", str(interval)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            stop(self.proc)
            raise RuntimeError(f"the fake upstream did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1].strip()

    def reset(self) -> None:
        """Forget the stored interactions of the last step (and any config change)."""
        httpx.post(f"{self.url}/_control/reset").raise_for_status()

    def configure(self, **config: object) -> None:
        httpx.post(f"{self.url}/_control/config", json=config).raise_for_status()


class Workers:
    """Client worker processes sharing the N sockets of a step."""

    def __init__(self, count: int, urls: list[str], headers: dict, deltas: int,
                 timeout: float, log: Path):
        self.procs = []
        for k in range(count):
            job = {"urls": urls[k::count], "headers": headers, "deltas": deltas,
                   "timeout": timeout}
            if not job["urls"]:
                continue
            proc = subprocess.Popen([PYTHON, "-m", "bench.relays.clients"], cwd=ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=log.open("a"), text=True)
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            self.procs.append(proc)

    def read(self, proc: subprocess.Popen) -> dict:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a client worker exited with {proc.wait()} (see the log)")
        return json.loads(line)

    def wait_ready(self) -> int:
        return sum(self.read(proc)["ready"] for proc in self.procs)

    def start(self, start_at: float) -> None:
        for proc in self.procs:
            proc.stdin.write(json.dumps({"start_at": start_at, "spread": SPREAD}) + "\n")
            proc.stdin.flush()

    def wait_finished(self) -> None:
        for proc in self.procs:
            if "finished" not in self.read(proc):
                raise RuntimeError("a client worker broke the protocol (see the log)")

    def results(self) -> list[dict]:
        turns = [turn for proc in self.procs for turn in self.read(proc)["results"]]
        for proc in self.procs:
            proc.wait(30)
        return turns

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)


def start_profiler(pid: int, out: Path, log: Path) -> subprocess.Popen:
    """py-spy sampling every thread of the server (collapsed stacks), without pausing it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or "py-spy"
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--nonblocking", "--threads",
                             "--rate", "200", "--format", "raw", "--output", str(out)],
                            stdout=log.open("a"), stderr=subprocess.STDOUT)
