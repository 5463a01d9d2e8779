"""Benchmark: our parse + assemble vs plain httpx-sse iteration over the same long stream.

Runs the fake upstream in a separate process (so its work does not share our GIL), stores one
transcript of N text deltas, then alternates, several times:
  (a) plain   — `aconnect_sse` + `aiter_sse`, counting events, nothing else;
  (b) ours    — `InteractionsClient` streaming + `Assembler.feed` for every event;
  (c) ours/sse — for reference: httpx-sse's `aiter_sse` framing + our decode, parse and
                 assemble (what (b) would cost if it framed events with httpx-sse).
Two stream sources are measured: `replay` (GET ?stream=true of the stored interaction: the
server only writes pre-encoded frames, so the client's own cost dominates) and `create` (a
streaming POST per run, as the chat does). Reports medians of wall time and of this process's
CPU time, events/s and the overhead of (b) over (a).

    .venv/bin/python bench/bench_stream.py [--deltas 50000] [--reps 7] [--mode both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from httpx_sse import aconnect_sse  # noqa: E402

from conversations.interactions import (  # noqa: E402
    API_REVISION,
    EVENT_TYPES,
    Assembler,
    InteractionsClient,
    parse_event,
)
from conversations.interactions.stream import decode as _decode  # noqa: E402

VARIANTS = ("plain", "ours", "ours/sse")
KEY = "bench-key"
MODEL = "gemini-3.5-flash"
TIMEOUT = httpx.Timeout(connect=10, read=300, write=60, pool=10)
HEADERS = {"x-goog-api-key": KEY, "Api-Revision": API_REVISION,
           "Content-Type": "application/json", "Accept": "text/event-stream"}


def start_fake() -> tuple[subprocess.Popen[str], str]:
    """`python -m devtools.fake_upstream` on a free port; returns the process and its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "devtools.fake_upstream", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"the fake upstream did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1].strip()


async def script(http: httpx.AsyncClient, base: str, deltas: int) -> None:
    response = await http.post(f"{base}/_control/script", json={"long_text": deltas})
    response.raise_for_status()


async def plain(http: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> int:
    """(a) plain httpx-sse iteration: count the events."""
    n = 0
    async with aconnect_sse(http, method, url, headers=HEADERS, **kwargs) as source:
        async for _ in source.aiter_sse():
            n += 1
    return n


async def ours(events: object) -> int:
    """(b) our client's typed events folded by the Assembler."""
    asm, n = Assembler(), 0
    async for event in events:  # type: ignore[attr-defined]
        asm.feed(event)
        n += 1
    assert asm.finished and asm.steps[-1]["content"][0]["text"], "stream did not assemble"
    return n


async def ours_over_httpx_sse(http: httpx.AsyncClient, method: str, url: str,
                             **kwargs: object) -> int:
    """(c) httpx-sse framing, then the same decode + parse + assemble as (b)."""
    asm, n = Assembler(), 0
    async with aconnect_sse(http, method, url, headers=HEADERS, **kwargs) as source:
        async for sse in source.aiter_sse():
            if sse.data and sse.data != "[DONE]":
                raw = _decode(sse.data.encode())
                cls = EVENT_TYPES.get(raw.get("event_type"))
                asm.feed(cls(raw) if cls is not None else parse_event(raw))
                n += 1
    assert asm.finished and asm.steps[-1]["content"][0]["text"], "stream did not assemble"
    return n


async def timed(run: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    n = await run()
    return time.perf_counter() - wall, time.process_time() - cpu, n


async def measure(mode: str, base: str, deltas: int, reps: int) -> dict[str, list]:
    results: dict[str, list] = {name: [] for name in VARIANTS}
    body = {"model": MODEL, "input": "benchmark", "stream": True}
    async with httpx.AsyncClient(timeout=TIMEOUT) as http, \
            InteractionsClient(KEY, base_url=base, http=http, timeout=TIMEOUT) as client:
        runs: dict[str, Callable[[], Awaitable[int]]]
        if mode == "replay":
            await script(http, base, deltas)
            stored = await client.create({"model": MODEL, "input": "benchmark"})
            url = client.url(f"/interactions/{stored.id}")
            runs = {"plain": lambda: plain(http, "GET", url, params={"stream": "true"}),
                    "ours": lambda: ours(client.get_stream(stored.id)),
                    "ours/sse": lambda: ours_over_httpx_sse(http, "GET", url,
                                                            params={"stream": "true"})}
        else:
            async def plain_create() -> int:
                await script(http, base, deltas)
                return await plain(http, "POST", client.url("/interactions"), json=body)

            async def ours_create() -> int:
                await script(http, base, deltas)
                return await ours(client.stream(body))

            async def sse_create() -> int:
                await script(http, base, deltas)
                return await ours_over_httpx_sse(http, "POST", client.url("/interactions"),
                                                 json=body)

            runs = {"plain": plain_create, "ours": ours_create, "ours/sse": sse_create}
        for name in VARIANTS:  # warm-up, not counted
            await runs[name]()
        for rep in range(reps):
            order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
            for name in order:
                results[name].append(await timed(runs[name]))
    return results


def report(mode: str, results: dict[str, list]) -> None:
    n = results["plain"][0][2]
    med = {name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
           for name, runs in results.items()}
    print(f"\n[{mode}] {n} events per stream, medians of {len(results['plain'])} runs each")
    for name, (wall, cpu) in med.items():
        print(f"  {name:8}  wall {wall * 1000:8.1f} ms  {n / wall:10,.0f} events/s   "
              f"cpu {cpu * 1000:8.1f} ms  {n / cpu:10,.0f} events/s")
    for name in ("ours", "ours/sse"):
        wall_ratio = med[name][0] / med["plain"][0] - 1
        cpu_ratio = med[name][1] / med["plain"][1] - 1
        target = "   (target <= +25%)" if name == "ours" else ""
        print(f"  overhead of {name} over plain: wall {wall_ratio:+.1%}   cpu {cpu_ratio:+.1%}"
              f"{target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deltas", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--mode", choices=("replay", "create", "both"), default="both")
    args = parser.parse_args()
    proc, base = start_fake()
    try:
        for mode in ("replay", "create") if args.mode == "both" else (args.mode,):
            report(mode, asyncio.run(measure(mode, base, args.deltas, args.reps)))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
