"""The team soak: idle sockets and light traffic on the team deployment (devtools/team.py)
for a while, counting what went wrong and sampling each daphne process's memory.
bench/soak_team.py runs it for ten minutes and prints the figures; tests/test_soak.py runs
it briefly.

    with running_team(members=plan.idle + plan.chats) as team:
        report = asyncio.run(soak(team, plan))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from devtools.procfs import cpu_seconds, rss_bytes
from devtools.soak.chats import Chat
from devtools.soak.plan import MAX_GROWTH_MIB_PER_MINUTE, ROUNDS, Plan
from devtools.soak.report import Close, Report, problems
from devtools.soak.sockets import OPEN_TIMEOUT, Socket
from devtools.team import Team

__all__ = ["MAX_GROWTH_MIB_PER_MINUTE", "ROUNDS", "Close", "Plan", "Report", "members_for",
           "problems", "soak"]


def members_for(plan: Plan) -> int:
    """Signed-in users the team needs: one per idle socket, one per chat."""
    return plan.idle + plan.chats


async def soak(team: Team, plan: Plan,
               on_sample: Callable[[Report], None] | None = None) -> Report:
    """Run the plan on the team (whose members come from `members_for(plan)`)."""
    team.upstream.configure(deltas=plan.deltas, delta_interval=plan.delta_interval)
    report = Report(plan, processes=len(team.ports))
    loop = asyncio.get_running_loop()
    started = loop.time()
    count = len(team.ports)
    idle = [await Socket.open(team, f"idle {n}", n % count, n, report, started)
            for n in range(plan.idle)]
    chats = [Chat(team, plan, report, k, plan.idle + k, started) for k in range(plan.chats)]
    try:
        for chat in chats:
            await chat.open()
        sampler = asyncio.create_task(_sample(team, plan, report, started, on_sample))
        until = started + plan.seconds
        try:
            await asyncio.gather(*(chat.run(until) for chat in chats))
            await asyncio.sleep(max(0.0, until - loop.time()))  # idle to the end
        finally:
            sampler.cancel()
        report.elapsed = loop.time() - started
        _take_sample(team, report, report.elapsed)
        for sock in idle:
            await _check_alive(sock, report)
    finally:
        for chat in chats:
            await chat.close()
        for sock in idle:
            if sock.is_open:
                await sock.close()
    return report


async def _check_alive(sock: Socket, report: Report) -> None:
    """An idle socket still open at the end answers a `sync` (it is not only half-open);
    any frame it received before is counted in `idle_frames`."""
    if not sock.is_open:
        return
    report.idle_frames += sock.frames - 1
    before = sock.frames
    await sock.send({"type": "sync"})
    if not await sock.until(lambda: sock.frames > before, OPEN_TIMEOUT):
        report.failures.append(f"{sock.name} on process {sock.process}: no snapshot after a "
                               "sync at the end")
        report.bad_snapshots += 1


async def _sample(team: Team, plan: Plan, report: Report, started: float,
                  on_sample: Callable[[Report], None] | None) -> None:
    loop = asyncio.get_running_loop()
    while True:
        _take_sample(team, report, loop.time() - started)
        if on_sample is not None:
            on_sample(report)
        await asyncio.sleep(plan.sample_every)


def _take_sample(team: Team, report: Report, at: float) -> None:
    rss, cpu = [], []
    for n, process in enumerate(team.processes):
        try:
            if process.poll() is not None:
                raise ProcessLookupError(f"exited with {process.returncode}")
            rss.append(rss_bytes(process.pid))
            cpu.append(cpu_seconds(process.pid))
        except OSError as exc:
            if n not in report.exited:
                report.exited[n] = f"{exc} at {at:.0f} s"
            rss.append(0)
            cpu.append(0.0)
    report.samples.append((round(at, 1), rss))
    report.cpu.append((round(at, 1), cpu))
