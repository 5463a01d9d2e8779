"""The relay benchmark's report: the result tables, the capacities and the target checks."""

from __future__ import annotations

from collections.abc import Callable

from bench.relays.step import Step

LEGEND = """\
x: p99 over 100 ms or deltas lost. ~: other processes used over {max_other:.0%} of the machine in
every attempt, so the figures are disturbed. gaps: frames out of seq. failed: turns not
completed. frames: frames per delta. 1st p99: ms from send to the first delta. rate/s: deltas
per second per stream, as received. load: CPU of server + fake + clients / (wall x cores);
other: the same for every other process on the machine.
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
    chatsite = name == "chatsite"
    head = (f"{'N':>5} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'dup':>4} {'gaps':>5} "
            f"{'failed':>6} {'CPU s/1k':>8} {'frames':>6} {'1st p99':>8} {'rate/s':>6} "
            f"{'load':>5} {'other':>5}")
    if chatsite:
        head += f" {'writes/turn':>11} {'budget':>6} {'steps':>5} {'seconds':>7}"
    print(head)
    for s in steps:
        row = (f"{s.n:>5} {fmt(s.p50):>8} {fmt(s.p99):>8} {s.lost:>6} {s.dup:>4} {s.gaps:>5} "
               f"{s.failed:>6} {fmt(s.cpu_per_1000, 3):>8} {fmt(s.frames_per_delta, 2):>6} "
               f"{fmt(s.first_delta_p99, 0):>8} {fmt(s.rate):>6} {machine_load(s, cores):>5.0%} "
               f"{others_load(s, cores):>5.0%}")
        if chatsite:
            row += (f" {fmt(s.writes_per_turn):>11} {fmt(s.write_budget):>6} "
                    f"{fmt(s.steps, 1):>5} {fmt(s.seconds, 2):>7}")
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
    if "chatsite" not in by_relay:
        return []
    checks = []
    ours = caps["chatsite"]
    floor = ladder[0] / 2  # a capacity below the ladder counts as half its first step

    def check(name: str, value: str, ok: bool) -> None:
        checks.append({"check": name, "value": value, "ok": ok})
        print(f"{verdict(ok)}  {name}: {value}")

    print()
    if "naive" in by_relay:
        naive = caps["naive"] or floor
        check("capacity >= 3x naive", f"{ours} vs {caps['naive'] or '<' + str(ladder[0])} "
              f"({ours / naive:.1f}x)", ours >= 3 * naive)
    if "bare" in by_relay:
        bare = caps["bare"] or floor
        check("capacity >= 50% of bare", f"{ours} vs {caps['bare']} ({ours / bare:.0%})",
              ours >= 0.5 * bare)
        ratios = []
        for ours_step, bare_step in zip(by_relay["chatsite"], by_relay["bare"], strict=True):
            if ours_step.cpu_per_1000 and bare_step.cpu_per_1000:
                ratios.append((ours_step.n, ours_step.cpu_per_1000 / bare_step.cpu_per_1000))
        shown = ", ".join(f"N={n}: {r:.2f}x" for n, r in ratios)
        check("CPU per 1,000 deltas <= 2x bare, every step", shown,
              bool(ratios) and all(r <= 2 for _, r in ratios))
    budgets = [(s.n, s.writes_per_turn, s.write_budget) for s in by_relay["chatsite"]
               if s.writes_per_turn is not None and s.write_budget is not None]
    shown = ", ".join(f"N={n}: {w:.1f} <= {b:.1f}" for n, w, b in budgets)
    check("writes per turn <= steps + seconds + 3, every step", shown,
          bool(budgets) and all(w <= b for _, w, b in budgets))
    return checks
