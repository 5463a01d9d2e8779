"""One step of the ladder: N conversations through a fresh relay server, measured.

Every step starts its own server processes (one, or the relay's `processes`, each on its
own port, the sockets dealt round them), warms each up with one short turn, runs the N
turns from the client workers, and reads the CPU each process used from /proc;
`summarize` turns the clients' per-turn results into a `Step`.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.relays.processes import (
    ROOT,
    FakeUpstream,
    Workers,
    cpu_by_command,
    cpu_seconds,
    machine_cpu,
    start_profiler,
    stop,
)
from bench.relays.servers import Relay
from devtools.ports import free_port, wait_listening

P99_LIMIT_MS = 100.0
SEND_DELAY = 0.3  # seconds between telling the workers to start and the first send


@dataclass
class Step:
    relay: str
    n: int
    deltas: int  # delivered, all streams
    p50: float | None  # ms, emit -> receipt
    p99: float | None
    lost: int
    dup: int
    gaps: int  # frames whose seq was not the previous + 1
    failed: int  # turns that did not complete
    frames_per_delta: float | None  # turn.update frames received per delta delivered
    cpu_per_1000: float | None  # server CPU seconds (all its processes) per 1,000 deltas
    first_delta_p99: float | None  # ms from send to the first delta
    rate: float | None  # mean deltas/s per stream, as received
    steps: float | None  # mean steps per turn
    seconds: float | None  # mean turn duration, send -> completed
    writes_per_turn: float | None
    writes: dict | None = None  # statements by kind and table, all turns
    load: dict = field(default_factory=dict)  # CPU seconds of each process in the window
    wall: float = 0.0
    machine_busy: float = 0.0  # share of all cores busy in the window, any process
    turns: list = field(default_factory=list)  # per-turn results, raw

    @property
    def ok(self) -> bool:
        return self.p99 is not None and self.p99 <= P99_LIMIT_MS and self.lost == 0

    def per_1000(self, process: str) -> float | None:
        """CPU seconds of one process of the load (e.g. "postgres") per 1,000 deltas."""
        if not self.deltas or process not in self.load:
            return None
        return self.load[process] / self.deltas * 1000

    @property
    def write_budget(self) -> float | None:
        if self.steps is None or self.seconds is None:
            return None
        return self.steps + self.seconds + 3


def warm_up(relay: Relay, port: int, fake: FakeUpstream, args: argparse.Namespace,
            log: Path) -> None:
    """One short turn first: one-time costs (imports, the upstream client's TLS context,
    the first database connection) are paid once per process, not per stream."""
    fake.configure(deltas=5)
    workers = Workers(1, [relay.warmup_url(port)], relay.headers(port), 5, 30, log)
    try:
        workers.wait_ready()
        workers.start(time.time())
        workers.wait_finished()
        [turn] = workers.results()
        if turn["status"] != "completed":
            raise RuntimeError(f"the {relay.name} warm-up turn failed: {turn}")
    finally:
        workers.stop()
        fake.configure(deltas=args.deltas)


def run_step(relay: Relay, n: int, fake: FakeUpstream, args: argparse.Namespace,
             log: Path) -> Step:
    relay.prepare(n)
    fake.reset()
    ports = [free_port() for _ in range(relay.processes)]
    servers = [subprocess.Popen(relay.command(port), cwd=ROOT, env=relay.env(),
                                stdout=log.open("a"), stderr=subprocess.STDOUT)
               for port in ports]
    workers = None
    spies = []
    try:
        for port, server in zip(ports, servers, strict=True):
            wait_listening(port, server)
        for port in ports:
            warm_up(relay, port, fake, args, log)
        if args.profile:
            spies = [start_profiler(server.pid, Path(args.profile) / f"{relay.name}-{n}"
                                    f"{'-' + str(k) if k else ''}.txt", log)
                     for k, server in enumerate(servers)]
        workers = Workers(args.workers, relay.urls(ports, n), relay.headers(ports[0]),
                          args.deltas, args.timeout, log)
        ready = workers.wait_ready()
        if ready < n:
            print(f"    only {ready} of {n} sockets connected", flush=True)
        pids = {**{f"server{k or ''}": server.pid for k, server in enumerate(servers)},
                "fake": fake.proc.pid,
                **{f"client{k}": p.pid for k, p in enumerate(workers.procs)}}
        writes_before = relay.writes(ports)
        workers.start(time.time() + SEND_DELAY)
        time.sleep(SEND_DELAY)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        services_before = cpu_by_command(relay.services)
        busy_before, total_before = machine_cpu()
        started = time.time()
        workers.wait_finished()
        wall = time.time() - started
        busy_after, total_after = machine_cpu()
        load = {name: round(cpu_seconds(pid) - cpu_before[name], 3) for name, pid in pids.items()}
        services_after = cpu_by_command(relay.services)
        for command in relay.services:  # "postgres", "redis-server": every process of each
            load[command] = round(sum(
                cpu - services_before.get(pid, (command, 0.0))[1]
                for pid, (name, cpu) in services_after.items() if name == command), 3)
        writes_after = relay.writes(ports)
        turns = workers.results()
    finally:
        if workers is not None:
            workers.stop()
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            spy.wait(30)
        for server in servers:
            stop(server)
    writes = None if writes_before is None else {
        kind: count - writes_before.get(kind, 0) for kind, count in writes_after.items()
        if count != writes_before.get(kind, 0)}
    step = summarize(relay.name, n, turns, load, wall, writes)
    step.machine_busy = (busy_after - busy_before) / (total_after - total_before)
    return step


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarize(relay: str, n: int, turns: list[dict], load: dict, wall: float,
              writes: dict | None) -> Step:
    latencies = [x for turn in turns for x in turn["latencies"]]
    delivered = sum(turn["received"] for turn in turns)
    done = [turn for turn in turns if turn["status"] == "completed" and turn["seconds"]]
    rates = [(t["received"] - 1) / (t["seconds"] - t["first_delta_ms"] / 1000)
             for t in done if t["first_delta_ms"] is not None and t["received"] > 1]
    firsts = [t["first_delta_ms"] for t in turns if t["first_delta_ms"] is not None]
    return Step(
        relay=relay, n=n, deltas=delivered, p50=percentile(latencies, 50),
        p99=percentile(latencies, 99), lost=sum(t["lost"] for t in turns),
        dup=sum(t["dup"] for t in turns), gaps=sum(t["gaps"] for t in turns),
        failed=len(turns) - len(done),
        frames_per_delta=sum(t["frames"] for t in turns) / delivered if delivered else None,
        cpu_per_1000=(sum(cpu for name, cpu in load.items() if name.startswith("server"))
                      / delivered * 1000) if delivered else None,
        first_delta_p99=percentile(firsts, 99), rate=mean(rates),
        steps=mean([t["steps"] for t in done]), seconds=mean([t["seconds"] for t in done]),
        writes_per_turn=None if writes is None else sum(writes.values()) / n, writes=writes,
        load=load, wall=round(wall, 3), turns=turns)
