"""The relay benchmark's report: the result tables, the capacities and the target checks."""

from __future__ import annotations

from collections.abc import Callable

from bench.relays.step import Step

LEGEND = """\
x: p99 over 100 ms or deltas lost. ~: other processes used over {max_other:.0%} of the machine in
every attempt, so the figures are disturbed. gaps: frames out of seq. failed: turns not
completed. frames: frames per delta. 1st p99: ms from send to the first delta. rate/s: deltas
per second per stream, as received. load: CPU of server + fake + clients (+ PostgreSQL and
Redis for the pg-* relays) / (wall x cores); other: the same for every other process on the
machine. CPU s/1k: the relay's server processes, all of them; pg and redis s/1k: the
database's and Redis's own.
"""


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def machine_load(step: Step, cores: int) -> float:
    """Share of all cores the server, fake upstream and clients used in the window."""
    return sum(step.load.values()) / (step.wall * cores) if step.wall else 0.0


def others_load(step: Step, cores: int) -> float:
    """Share of all cores that processes outside the benchmark used in the window."""
    return max(0.0, step.machine_busy - machine_load(step, cores))


def print_table(name: str, steps: list[Step], cores: int, max_other: float) -> None:
    chatsite = name == "chatsite" or name.startswith("pg-")
    head = (f"{'N':>5} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'dup':>4} {'gaps':>5} "
            f"{'failed':>6} {'CPU s/1k':>8} {'frames':>6} {'1st p99':>8} {'rate/s':>6} "
            f"{'load':>5} {'other':>5}")
    team = name.startswith("pg-")
    if chatsite:
        head += f" {'writes/turn':>11} {'budget':>6} {'steps':>5} {'seconds':>7}"
    if team:
        head += f" {'pg s/1k':>8} {'redis s/1k':>10}"
    print(head)
    for s in steps:
        row = (f"{s.n:>5} {fmt(s.p50):>8} {fmt(s.p99):>8} {s.lost:>6} {s.dup:>4} {s.gaps:>5} "
               f"{s.failed:>6} {fmt(s.cpu_per_1000, 3):>8} {fmt(s.frames_per_delta, 2):>6} "
               f"{fmt(s.first_delta_p99, 0):>8} {fmt(s.rate):>6} {machine_load(s, cores):>5.0%} "
               f"{others_load(s, cores):>5.0%}")
        if chatsite:
            row += (f" {fmt(s.writes_per_turn):>11} {fmt(s.write_budget):>6} "
                    f"{fmt(s.steps, 1):>5} {fmt(s.seconds, 2):>7}")
        if team:
            row += (f" {fmt(s.per_1000('postgres'), 3):>8}"
                    f" {fmt(s.per_1000('redis-server'), 3):>10}")
        flags = ("" if s.ok else " x") + (" ~" if others_load(s, cores) > max_other else "")
        print(row + ("  " + flags if flags else ""))
    for s in steps:
        if s.writes:
            shown = ", ".join(f"{kind} {count / s.n:.2f}"
                              for kind, count in sorted(s.writes.items()))
            print(f"  writes per turn at N={s.n}: {shown}")


def capacity(steps: list[Step]) -> int:
    """The largest N with p99 <= 100 ms and nothing lost (0: not even the first step)."""
    return max((s.n for s in steps if s.ok), default=0)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_checks(by_relay: dict[str, list[Step]], ladder: list[int], noisy: Callable[[Step], bool]
                 ) -> list[dict]:
    """The targets of the issue; returns them for the JSON results."""
    caps = {name: capacity(steps) for name, steps in by_relay.items()}
    for name, cap in caps.items():
        shown = f"{cap}" if cap else f"< {ladder[0]} (no step passed)"
        if cap == max(ladder):
            shown += " (the top of the ladder: try a longer one)"
        disturbed = [s.n for s in by_relay[name] if noisy(s) and s.n <= 2 * max(cap, ladder[0])]
        if disturbed:
            shown += f"; disturbed steps: N={', '.join(map(str, disturbed))}"
        print(f"capacity {name:<9} {shown}")
    checks: list[dict] = []

    def check(name: str, value: str, ok: bool) -> None:
        checks.append({"check": name, "value": value, "ok": ok})
        print(f"{verdict(ok)}  {name}: {value}")

    print()
    floor = ladder[0] / 2  # a capacity below the ladder counts as half its first step
    if "chatsite" in by_relay:
        chatsite_checks(by_relay, caps, floor, check)
    team_checks(by_relay, caps, floor, check)
    return checks


def chatsite_checks(by_relay: dict[str, list[Step]], caps: dict[str, int], floor: float,
                    check: Callable[[str, str, bool], None]) -> None:
    ours = caps["chatsite"]
    if "naive" in by_relay:
        naive = caps["naive"] or floor
        check("capacity >= 3x naive", f"{ours} vs {caps['naive'] or '<' + str(2 * floor)} "
              f"({ours / naive:.1f}x)", ours >= 3 * naive)
    if "bare" in by_relay:
        bare = caps["bare"] or floor
        check("capacity >= 50% of bare", f"{ours} vs {caps['bare']} ({ours / bare:.0%})",
              ours >= 0.5 * bare)
        shown, ratios = cpu_ratios(by_relay["chatsite"], by_relay["bare"])
        check("CPU per 1,000 deltas <= 2x bare, every step", shown,
              bool(ratios) and all(r <= 2 for r in ratios))
    budgets = [(s.n, s.writes_per_turn, s.write_budget) for s in by_relay["chatsite"]
               if s.writes_per_turn is not None and s.write_budget is not None]
    shown = ", ".join(f"N={n}: {w:.1f} <= {b:.1f}" for n, w, b in budgets)
    check("writes per turn <= steps + seconds + 3, every step", shown,
          bool(budgets) and all(w <= b for _, w, b in budgets))


def cpu_ratios(ours: list[Step], theirs: list[Step]) -> tuple[str, list[float]]:
    """Our CPU per 1,000 deltas over theirs, step by step: the text, and the ratios."""
    pairs = [(a.n, a.cpu_per_1000 / b.cpu_per_1000) for a, b in zip(ours, theirs, strict=True)
             if a.cpu_per_1000 and b.cpu_per_1000]
    return ", ".join(f"N={n}: {r:.2f}x" for n, r in pairs), [r for _, r in pairs]


def team_checks(by_relay: dict[str, list[Step]], caps: dict[str, int], floor: float,
                check: Callable[[str, str, bool], None]) -> None:
    """Two processes against one, and what Redis costs against the in-memory layer."""
    for layer in ("classic", "pubsub"):
        one, two = f"pg-{layer}", f"pg-{layer}-x2"
        if one in by_relay and two in by_relay:
            if caps[one] and caps[two]:
                ratio = caps[two] / caps[one]
                check(f"{layer}: capacity across two processes >= 1.5x one",
                      f"{caps[two]} vs {caps[one]} ({ratio:.2f}x)", ratio >= 1.5)
            else:  # below the ladder: no ratio can be read
                check(f"{layer}: capacity across two processes >= 1.5x one",
                      f"{caps[two]} vs {caps[one]} (a step below {2 * floor:g} is needed)",
                      False)
        if one in by_relay and "pg-memory" in by_relay:
            extra = [(a.n, (a.cpu_per_1000 - b.cpu_per_1000))  # ms per delta
                     for a, b in zip(by_relay[one], by_relay["pg-memory"], strict=True)
                     if a.cpu_per_1000 and b.cpu_per_1000]
            shown, _ = cpu_ratios(by_relay[one], by_relay["pg-memory"])
            print(f"info  {layer}: server CPU per delta vs the in-memory layer: {shown}; "
                  "Redis adds " + ", ".join(f"N={n}: {ms * 1000:.0f} us" for n, ms in extra)
                  + " per delta (the redis-server's own CPU not included)")
    if "pg-classic" in by_relay and "pg-pubsub" in by_relay:
        shown, _ = cpu_ratios(by_relay["pg-pubsub"], by_relay["pg-classic"])
        print(f"info  server CPU per delta, pubsub vs classic: {shown}")
