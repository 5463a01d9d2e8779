"""Soak: the team deployment as a whole, idle and under light traffic, for ten minutes.

Two daphne processes on a fresh PostgreSQL database and a Redis channel layer, with the fake
upstream as their Gemini (devtools/team.py), and the soak's clients (devtools/soak/):

  - idle sockets (--idle, spread over the processes), each of its own user's conversation,
    that must stay open the whole time, receive nothing, and at the end still answer a sync;
  - light traffic: --chats conversations, each with a socket on both processes, sending a
    message every few seconds (--pause) from either socket; each reply must reach both
    sockets whole and in order (frame seq without gaps). Round after round a chat also stops
    a reply from the other process's socket, closes and reopens a socket between replies
    (the snapshot must end with the last reply), and closes a socket mid-reply and joins
    again (the snapshot, turn.sync and live frames must add up to the whole reply).

Every --sample-every seconds it reads each daphne process's resident memory (RSS) and CPU
from /proc. The report: sockets opened and unexpected closes (with their codes), turns
completed, stopped and failed, gaps, and per process RSS at the end of the warm-up, at the
end, its maximum, and its growth per minute as a least-squares slope over the second half
of the run.

It fails (exit status 1) when any socket closes that the soak did not close, any turn fails
or shows a gap, an idle socket receives a frame or stops answering, a daphne process exits,
or a process's memory grows faster than --max-growth MiB a minute over the second half.

That threshold is about steady state, not about a process never growing. CPython takes
memory as it first runs each path (imports, Django's and psycopg's caches, the thread pool's
threads and their malloc arenas) and keeps it; here a process's RSS rises by about 5 MiB in
the first minute and by a little over 1 MiB more until about the tenth, then holds (a
20-minute run: 0.01 MiB/min over its second half). So the first --warmup seconds (120) are
not judged, and growth is a least-squares slope over the second half, which that settling
bends by about 0.1 MiB/min and a leak (memory kept per reply, per socket, per reconnect)
bends all the time. The default limit, 0.25 MiB/min (2.5 MiB over ten minutes), fails a
leak of about 15 KiB per reply at this traffic (some 17 replies a minute per process);
smaller leaks need a longer run, whose second half is past the settling.

    .venv/bin/python bench/soak_team.py [--minutes 10] [--idle 20] [--chats 4]
                                        [--max-growth 0.25] [--redis redis://127.0.0.1:6379/8]

Needs PostgreSQL (TEAM_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432, a user who
may create databases) and Redis. It uses Redis database 8 by default, so that the tests'
team deployments (database 7) do not share its groups.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_relay import RESULTS, code_version  # noqa: E402
from devtools.soak import MAX_GROWTH_MIB_PER_MINUTE, Plan, Report, members_for, problems, soak  # noqa: E402
from devtools.soak.memory import figures  # noqa: E402
from devtools.team import running_team  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    plan = Plan()
    parser.add_argument("--minutes", type=float, default=plan.seconds / 60)
    parser.add_argument("--idle", type=int, default=plan.idle, help="idle sockets")
    parser.add_argument("--chats", type=int, default=plan.chats, help="conversations with "
                        "traffic (a socket on each process)")
    parser.add_argument("--pause", default=f"{plan.pause[0]:g},{plan.pause[1]:g}",
                        help="seconds between a chat's rounds: MIN,MAX")
    parser.add_argument("--deltas", type=int, default=plan.deltas, help="text deltas a reply")
    parser.add_argument("--interval", type=float, default=plan.delta_interval,
                        help="seconds between deltas")
    parser.add_argument("--sample-every", type=float, default=plan.sample_every)
    parser.add_argument("--warmup", type=float, default=plan.warmup,
                        help="seconds before the memory figures start")
    parser.add_argument("--max-growth", type=float, default=MAX_GROWTH_MIB_PER_MINUTE,
                        help="MiB a minute a process may grow over the second half")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--seed", type=int, default=plan.seed)
    return parser.parse_args()


def plan_of(args: argparse.Namespace) -> Plan:
    low, high = (float(x) for x in args.pause.split(","))
    return Plan(seconds=args.minutes * 60, idle=args.idle, chats=args.chats,
                pause=(low, high), deltas=args.deltas, delta_interval=args.interval,
                sample_every=args.sample_every, warmup=args.warmup, seed=args.seed)


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def progress(report: Report) -> None:
    """A line a minute while the soak runs."""
    at, rss = report.samples[-1]
    if len(report.samples) > 1 and int(at // 60) == int(report.samples[-2][0] // 60):
        return
    turns = report.turns
    print(f"  {clock(at)}  turns {turns['completed']} completed, {turns['stopped']} stopped, "
          f"{turns['failed']} failed; unexpected closes {len(report.unexpected)}; RSS "
          + " / ".join(f"{r / 2**20:.1f}" for r in rss) + " MiB", flush=True)


def cpu_share(report: Report, process: int, warmup: float) -> float:
    """CPU of a process after the warm-up, as a share of one core."""
    after = [(t, cpu[process]) for t, cpu in report.cpu if t >= warmup] or report.cpu[-1:]
    (t0, c0), (t1, c1) = after[0], after[-1]
    return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


def print_report(report: Report, ports: list[int], max_growth: float) -> list[str]:
    plan = report.plan
    memory = figures(report.samples, plan.warmup, report.elapsed)
    print(f"\n{'process':>7} {'port':>6} {'sockets':>7} {'RSS start':>9} {'end':>7} "
          f"{'max':>7} {'growth/min':>10} {'CPU':>5}")
    for n, (port, mem) in enumerate(zip(ports, memory, strict=True)):
        sockets = len(range(n, plan.idle, len(ports))) + plan.chats
        growth = "-" if mem.slope is None else f"{mem.slope:+.3f}"
        print(f"{n:>7} {port:>6} {sockets:>7} {mem.start:>9.1f} {mem.end:>7.1f} {mem.max:>7.1f} "
              f"{growth:>10} {cpu_share(report, n, plan.warmup):>5.1%}")
    print(f"(RSS in MiB from {clock(min(plan.warmup, report.elapsed))} on; growth: MiB a "
          f"minute, least squares over {clock(report.elapsed / 2)}-{clock(report.elapsed)}; "
          "CPU: share of one core after the warm-up)\n")
    turns = report.turns
    print(f"sockets opened {report.sockets_opened}, closed by the soak {report.closed_by_us}, "
          f"closed unexpectedly {len(report.unexpected)}")
    for close in report.unexpected:
        print(f"  {close.socket} on process {close.process} at {clock(close.at)}: code "
              f"{close.code} {close.reason!r}")
    print(f"turns completed {turns['completed']}, stopped {turns['stopped']}, failed "
          f"{turns['failed']}; frames out of seq {report.gaps}; syncs a rejoined socket asked "
          f"for {report.syncs}; frames on idle sockets {report.idle_frames}")
    print("rounds: " + ", ".join(f"{name} {count}" for name, count in report.rounds.items()))
    for failure in report.failures[:20]:
        print(f"  {failure}")
    found = problems(report, memory, max_growth)
    print(f"\n{'FAIL: ' + '; '.join(found) if found else 'PASS'}  (memory limit "
          f"{max_growth:g} MiB/min per process)")
    return found


def main() -> None:
    args = parse_args()
    plan = plan_of(args)
    cores = os.cpu_count() or 1
    print(f"team soak: {cores} cores ({platform.processor() or platform.machine()}), Python "
          f"{platform.python_version()}; 2 daphne processes on PostgreSQL + Redis "
          f"({args.redis}); {clock(plan.seconds)} min; {plan.idle} idle sockets, {plan.chats} "
          f"chats (a round every {plan.pause[0]:g}-{plan.pause[1]:g} s, replies of "
          f"{plan.deltas} deltas every {plan.delta_interval * 1000:.0f} ms); chatsite at "
          f"{code_version()}")
    print(f"the daphne processes, PostgreSQL, Redis, the fake upstream and the clients share "
          f"these {cores} cores (load average now: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})", flush=True)
    logs = Path(tempfile.mkdtemp(prefix="soak-team-"))
    with running_team(members=members_for(plan), redis=args.redis, logs=logs) as team:
        report = asyncio.run(soak(team, plan, progress))
        ports = team.ports
    found = print_report(report, ports, args.max_growth)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-team-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"code": code_version(), "machine": platform.platform(),
                               "max_growth": args.max_growth, "problems": found,
                               # asdict would rebuild the Counter from its items
                               "report": {**asdict(report), "turns": dict(report.turns),
                                          "rounds": dict(report.rounds)}}))
    print(f"\nraw results: {out.relative_to(RESULTS.parent.parent)}; daphne logs: {logs}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
