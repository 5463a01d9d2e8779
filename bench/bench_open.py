"""Benchmark: the cost of opening a conversation, against its length.

For conversations of --lengths turns on the branch on screen (each a ~200-character message
and a completed ~1,500-character markdown reply; every 10th turn also has an older sibling,
so the tree is not a single line), opening the conversation:

  (a) over the websocket alone: bytes received and time from the handshake to the end of
      the snapshot (the `snapshot`/`snapshot.part` frame that says `"complete": true`);
  (b) in chromium: time from navigation start to the first painted reply (the first
      `.turn` in `#turns` whose reply has visible text), and the page's websocket bytes.

Lengths alternate within each of --repeat rounds, after one untimed visit each; medians are
compared with the shortest length's. Target: opening the longest costs <= 1.5x opening the
shortest, on websocket time and on first paint.

    .venv/bin/python bench/bench_open.py [--lengths 20,200,2000] [--repeat 5]

Needs Debian's chromium at /usr/bin/chromium (`make test` installs it). The server is
bench/serve_chatsite.py under daphne on a SQLite file in a temporary directory, run with
DEBUG=1 so that it serves the source static files (the hashed ones need `collectstatic`).
The server, chromium and this client share the machine's cores, which the output states.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_relay import code_version  # noqa: E402
from bench.relays.processes import PYTHON, ROOT, stop  # noqa: E402
from bench.relays.servers import Chatsite  # noqa: E402
from devtools.ports import free_port, wait_listening  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
TARGET = 1.5  # the longest conversation opens in at most this times the shortest's time
BRANCH_EVERY = 10  # every 10th turn has an older sibling (a regenerated reply)
NO_UPSTREAM = "http://127.0.0.1:9"  # nothing is generated: no request goes upstream
TIMEOUT = 120  # seconds one opening may take

# The first turn of the thread with its reply's text on screen, measured from navigation start.
FIRST_REPLY = """() => {
  const reply = document.querySelector("#turns .turn .msg-reply .steps");
  return reply && reply.innerText.trim() && reply.checkVisibility() ? performance.now() : null;
}"""


# --- the conversations (made in a process of their own, with the server's settings) -------

QUESTION = ("Question {n}: how should I structure the caching layer of the report service so "
            "that reads stay fast while writes invalidate the right entries, and what would "
            "you measure first before changing anything?")
REPLY = """## Part {n}: caching the report service

Here is how I would approach **part {n}**. The short version: keep the data close to where
it is used, *measure before optimising*, and write the test that shows the problem first.

1. Write down what the service does today, including the edge cases (empty reports,
   reports larger than a page, concurrent writers).
2. Change one thing at a time, and run the benchmark again after each change.
3. Keep every diff small enough to review in one sitting.

```python
def cached_report(cache: dict, key: str, build) -> bytes:
    # turn {n}: build once, serve many times; writers delete the key
    if key not in cache:
        cache[key] = build(key)
    return cache[key]
```

| option | read cost | write cost | notes |
|---|---|---|---|
| in-process dict | lowest | lowest | lost on restart, one copy per worker |
| shared cache | low | low | invalidation is the hard part |
| database index | medium | medium | always consistent, no new moving parts |

> Premature optimisation is the root of much evil: the numbers decide, not the hunch.

Once the hit rate is known, decide whether the cache earns its keep: below about 60% it
mostly adds a second place where stale data can hide. Above it, give every entry an owner,
so that the code that writes a report is the code that drops its cached copy, and log both
events with the report's key so that a stale read can be traced back to the write it missed.
That log is also what tells you, a month later, whether the cache is still worth having.
"""


def turn_fields(n: int, client_id: str) -> dict:
    reply = REPLY.format(n=n)
    return {"client_id": client_id, "status": "completed", "seq": 40,
            "interaction_id": f"bench-{client_id}",
            "input": [{"type": "text", "text": QUESTION.format(n=n)}],
            "steps": [{"type": "model_output", "content": [{"type": "text", "text": reply}]}],
            "usage": {"total_input_tokens": 60 + 400 * n, "total_output_tokens": len(reply) // 4,
                      "total_tokens": 60 + 400 * n + len(reply) // 4}}


def seed(plan: dict[str, int]) -> None:
    """Give each conversation its turns: {conversation id: turns on the branch on screen}."""
    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from conversations.models import Conversation, Turn

    for conversation_id, length in plan.items():
        conversation = Conversation.objects.get(pk=conversation_id)
        turns, parent = [], None
        for n in range(length):
            if n % BRANCH_EVERY == BRANCH_EVERY - 1:  # older, so the newest sibling is shown
                turns.append(Turn(conversation=conversation, parent=parent,
                                  **turn_fields(n, f"{n}-old")))
            parent = Turn(conversation=conversation, parent=parent, **turn_fields(n, str(n)))
            turns.append(parent)
        start = timezone.now() - timedelta(seconds=len(turns))
        with transaction.atomic():
            Turn.objects.bulk_create(turns, batch_size=500)
            # auto_now_add stamped them (nearly) alike: give the thread its order.
            for k, turn in enumerate(turns):
                turn.created = start + timedelta(seconds=k)
            Turn.objects.bulk_update(turns, ["created"], batch_size=500)
            Conversation.objects.filter(pk=conversation_id).update(title=f"{length} turns")


# --- the two measurements --------------------------------------------------------------

def open_socket(url: str, headers: dict) -> dict:
    """Bytes, frames and turns received, and ms from the handshake to the snapshot's end."""
    from websockets.sync.client import connect

    size = frames = turns = 0
    started = time.perf_counter()
    with connect(url, additional_headers=headers, compression=None, proxy=None,
                 max_size=None, open_timeout=TIMEOUT) as ws:
        while True:
            text = ws.recv(timeout=TIMEOUT)
            elapsed = time.perf_counter() - started  # before our own parsing
            size, frames = size + len(text.encode()), frames + 1
            frame = json.loads(text)
            turns += len(frame.get("turns") or [])
            if str(frame.get("type", "")).startswith("snapshot") and frame.get("complete"):
                break
    return {"ws_ms": elapsed * 1000, "ws_bytes": size, "frames": frames, "turns": turns}


def open_page(context, url: str, count_bytes: bool = False) -> dict:
    """ms from navigation start to the first painted reply; with `count_bytes`, the bytes
    the page's websockets received by then (counted only when asked: relaying every frame
    to this process costs CPU on the machine being measured)."""
    page = context.new_page()
    received: list[int] = []
    if count_bytes:
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(
            len(payload.encode() if isinstance(payload, str) else payload))))
    try:
        page.goto(url, wait_until="commit", timeout=TIMEOUT * 1000)
        painted = page.wait_for_function(FIRST_REPLY, polling="raf", timeout=TIMEOUT * 1000)
        return {"paint_ms": painted.json_value(), "page_bytes": sum(received) or None}
    finally:
        page.close()


# --- main ----------------------------------------------------------------------------------

def median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def report(lengths: list[int], samples: dict[int, list[dict]], page_bytes: dict) -> bool:
    """The table of medians and the checks; True when both pass."""
    base = lengths[0]
    print(f"\n turns  turns sent    ws bytes  frames   ws ms   first paint ms  page ws bytes"
          f"  ratio vs {base} (ws ms / paint ms)")
    for n in lengths:
        s = samples[n]
        ws_ratio = median(s, "ws_ms") / median(samples[base], "ws_ms")
        paint_ratio = median(s, "paint_ms") / median(samples[base], "paint_ms")
        print(f"{n:>6,} {s[0]['turns']:>11,} {s[0]['ws_bytes']:>11,} {s[0]['frames']:>7}"
              f" {median(s, 'ws_ms'):>7.1f} {median(s, 'paint_ms'):>16.1f}"
              f" {page_bytes[n] or 0:>14,}   {ws_ratio:.2f}x / {paint_ratio:.2f}x")
    longest, ok = lengths[-1], True
    print(f"\n(medians of {len(samples[base])} openings; 'turns sent' counts the snapshot's "
          "turns, siblings included)")
    for label, key in (("websocket time", "ws_ms"), ("first paint", "paint_ms")):
        ratio = median(samples[longest], key) / median(samples[base], key)
        passed = ratio <= TARGET
        ok = ok and passed
        print(f"{'PASS' if passed else 'FAIL'}  opening {longest:,} turns: {label} "
              f"{ratio:.2f}x opening {base} (target <= {TARGET}x)")
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="20,200,2000",
                        help="turns on the branch on screen, comma-separated")
    parser.add_argument("--repeat", type=int, default=5, help="openings per length and kind")
    parser.add_argument("--seed", type=json.loads, help=argparse.SUPPRESS)  # internal step
    args = parser.parse_args()
    args.lengths = sorted(int(n) for n in args.lengths.split(","))
    return args


def main() -> None:
    args = parse_args()
    if args.seed is not None:
        seed(args.seed)
        return
    from playwright.sync_api import sync_playwright

    cores = os.cpu_count() or 1
    print(f"open benchmark: {cores} cores ({platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()}; lengths {args.lengths}, {args.repeat} "
          f"openings each; chatsite at {code_version()}")
    print(f"the server, chromium and this client share these {cores} cores (load average "
          f"now: {', '.join(f'{x:.1f}' for x in os.getloadavg())})", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-open-"))
    site = Chatsite(workdir, NO_UPSTREAM, len(args.lengths), {"DEBUG": "1"})
    site.prepare(0)
    ids = dict(zip(args.lengths, site.conversations, strict=True))
    made = time.perf_counter()
    subprocess.run([PYTHON, __file__, "--seed", json.dumps({ids[n]: n for n in args.lengths})],
                   cwd=ROOT, env=site.env(), check=True)
    print(f"made the conversations in {time.perf_counter() - made:.1f} s", flush=True)
    port = free_port()
    log = workdir / "server.log"
    server = subprocess.Popen(site.command(port), cwd=ROOT, env=site.env(),
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def socket_url(n: int) -> str:
        return f"ws://127.0.0.1:{port}/ws/conversations/{ids[n]}/"

    samples: dict[int, list[dict]] = {n: [] for n in args.lengths}
    try:
        wait_listening(port, server)
        name, value = site.cookie.split("=", 1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context()
            context.add_cookies([{"name": name, "value": value, "url": base}])
            # One untimed visit each first: imports, caches and JIT are paid before timing.
            page_bytes = {}
            for n in args.lengths:
                open_socket(socket_url(n), site.headers(port))
                page_bytes[n] = open_page(context, f"{base}/c/{ids[n]}/", True)["page_bytes"]
            for r in range(args.repeat):
                k = r % len(args.lengths)  # rotate the order so no length always goes first
                for n in args.lengths[k:] + args.lengths[:k]:
                    sample = {**open_socket(socket_url(n), site.headers(port)),
                              **open_page(context, f"{base}/c/{ids[n]}/")}
                    samples[n].append(sample)
                    print(f"  round {r + 1}/{args.repeat}  {n:>5,} turns: ws {sample['ws_ms']:7.1f}"
                          f" ms ({sample['ws_bytes']:,} bytes, {sample['frames']} frames), "
                          f"first paint {sample['paint_ms']:7.1f} ms", flush=True)
            browser.close()
    finally:
        stop(server)
    report(args.lengths, samples, page_bytes)
    print(f"\nserver log: {log}")
    for database in workdir.glob("*.sqlite3*"):
        database.unlink()


if __name__ == "__main__":
    main()
