"""Benchmark: a conversation with generated images opens as fast as one without.

Two conversations of --turns turns each (the same ~200-character questions and ~1,500-character
markdown replies as bench_open.py); in one, every reply also holds a generated image, stored
as a file the way the runner stores it (conversations.generated: an Attachment and a
`/files/<uuid>/` reference in the step). Opening each:

  (a) over the websocket alone: bytes received and ms from the handshake to the end of the
      snapshot (--sockets openings of each per round, alternating);
  (b) in chromium: ms from navigation start to the first painted reply, the page's websocket
      bytes, and, for the images, ms until every image on screen has loaded.

The images are --side x --side PNGs of noise (they compress as badly as photos do: about
3 bytes a pixel). The figure the same images would weigh inline, as base64 in the steps (how
they were stored before), is printed for comparison: a turn whose image is over daphne's
1 MiB websocket message limit could not be sent at all.

Target: the images conversation opens within 1.2x the other's time and bytes (medians of
--repeat openings each, alternating, after one untimed visit each).

    .venv/bin/python bench/bench_open_images.py [--turns 50] [--side 512] [--repeat 7]

Needs Debian's chromium at /usr/bin/chromium. The server, chromium and this client share
the machine's cores, which the output states.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_open import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    FIRST_REPLY,
    NO_UPSTREAM,
    TIMEOUT,
    open_page,
    open_socket,
    turn_fields,
)
from bench.bench_relay import code_version  # noqa: E402
from bench.relays.processes import PYTHON, ROOT, stop  # noqa: E402
from bench.relays.servers import Chatsite  # noqa: E402
from devtools.ports import free_port, wait_listening  # noqa: E402

TARGET = 1.2
DAPHNE_LIMIT = 1 << 20  # a websocket message over this closes the socket
KINDS = ("text", "images")
# Every image on screen has been fetched and decoded (there is at least one).
IMAGES_SHOWN = """() => {
  const shown = [...document.querySelectorAll("#turns figure.media img")].filter((img) => {
    const box = img.getBoundingClientRect();
    return box.bottom > 0 && box.top < innerHeight;
  });
  return shown.length && shown.every((img) => img.complete && img.naturalWidth)
    ? performance.now() : null;
}"""


def noise_png(side: int, seed: int) -> bytes:
    """A PNG of random pixels (seeded: the same run makes the same files)."""
    import random
    import struct
    import zlib

    rows = random.Random(seed).randbytes(side * side * 3)
    raw = b"".join(b"\x00" + rows[y * side * 3:(y + 1) * side * 3] for y in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1))
            + chunk(b"IEND", b""))


def seed(plan: dict) -> None:
    """Give both conversations their turns; the images conversation's replies each get a
    generated image, saved by the same service the runner uses."""
    import django

    django.setup()
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from conversations import generated
    from conversations.models import Conversation, Turn

    turns, side = plan["turns"], plan["side"]
    for kind, conversation_id in plan["ids"].items():
        conversation = Conversation.objects.get(pk=conversation_id)
        made, parent = [], None
        for n in range(turns):
            fields = turn_fields(n, str(n))
            if kind == "images":
                attachment = generated.save_generated(
                    owner_id=conversation.owner_id, data=noise_png(side, n), kind="image",
                    name=f"image-{n + 1}.png")
                block = {"type": "image", "mime_type": "image/png", "data": ""}
                generated.refer(block, attachment)
                fields["steps"][0]["content"].append(block)
            parent = Turn(conversation=conversation, parent=parent, **fields)
            made.append(parent)
        start = timezone.now() - timedelta(seconds=len(made))
        with transaction.atomic():
            Turn.objects.bulk_create(made)
            for k, turn in enumerate(made):
                turn.created = start + timedelta(seconds=k)
            Turn.objects.bulk_update(made, ["created"])
            Conversation.objects.filter(pk=conversation_id).update(title=f"{turns} turns, {kind}")


def median(samples: list[dict], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def report(samples: dict[str, list[dict]], sockets: dict[str, list[dict]], page_bytes: dict,
           inline: list[int]) -> bool:
    print(f"\n{'':>7} {'turns sent':>10} {'ws bytes':>10} {'ws ms':>7} {'first paint ms':>15}"
          f" {'page ws bytes':>14} {'images shown ms':>16}")
    for kind in KINDS:
        s = samples[kind]
        shown = f"{median(s, 'images_ms'):16.1f}" if kind == "images" else f"{'-':>16}"
        print(f"{kind:>7} {s[0]['turns']:>10} {s[0]['ws_bytes']:>10,}"
              f" {median(sockets[kind], 'ws_ms'):>7.1f}"
              f" {median(s, 'paint_ms'):>15.1f} {page_bytes[kind]:>14,} {shown}")
    over = sum(size > DAPHNE_LIMIT for size in inline)
    print(f"\n(medians of {len(samples['text'])} page and {len(sockets['text'])} socket openings "
          "each; the same images inline as "
          f"base64 would weigh {sum(inline):,} bytes in the steps, {over} of them alone over "
          "daphne's 1 MiB message limit)")
    ok = True
    for label, key in (("websocket bytes", "ws_bytes"), ("websocket time", "ws_ms"),
                       ("first paint", "paint_ms")):
        source = sockets if key.startswith("ws_") else samples
        ratio = median(source["images"], key) / median(source["text"], key)
        ok = ok and ratio <= TARGET
        print(f"{'PASS' if ratio <= TARGET else 'FAIL'}  {label}: with images "
              f"{ratio:.2f}x without (target <= {TARGET}x)")
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=50, help="turns (and images) per chat")
    parser.add_argument("--side", type=int, default=512, help="image width and height, px")
    parser.add_argument("--repeat", type=int, default=7, help="page openings per conversation")
    parser.add_argument("--sockets", type=int, default=5,
                        help="socket-only openings per conversation and round")
    parser.add_argument("--seed", type=json.loads, help=argparse.SUPPRESS)  # internal step
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.seed is not None:
        seed(args.seed)
        return
    from playwright.sync_api import sync_playwright

    cores = os.cpu_count() or 1
    print(f"open-with-images benchmark: {cores} cores ({platform.processor() or platform.machine()}"
          f"), Python {platform.python_version()}; {args.turns} turns, {args.side}px images, "
          f"{args.repeat} openings each; chatsite at {code_version()}")
    print(f"the server, chromium and this client share these {cores} cores (load average "
          f"now: {', '.join(f'{x:.1f}' for x in os.getloadavg())})", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-open-images-"))
    media = workdir / "media"
    site = Chatsite(workdir, NO_UPSTREAM, len(KINDS), {"DEBUG": "1", "MEDIA_ROOT": str(media)})
    site.prepare(0)
    ids = dict(zip(KINDS, site.conversations, strict=True))
    made = time.perf_counter()
    plan = {"ids": ids, "turns": args.turns, "side": args.side}
    subprocess.run([PYTHON, __file__, "--seed", json.dumps(plan)], cwd=ROOT, env=site.env(),
                   check=True)
    files = [p for p in media.rglob("*") if p.is_file()]
    inline = [len(base64.b64encode(p.read_bytes())) for p in files]
    print(f"made the conversations in {time.perf_counter() - made:.1f} s ({len(files)} image "
          f"files, {sum(p.stat().st_size for p in files):,} bytes)", flush=True)
    port = free_port()
    log = workdir / "server.log"
    server = subprocess.Popen(site.command(port), cwd=ROOT, env=site.env(),
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    samples: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    socket_samples: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    try:
        wait_listening(port, server)
        name, value = site.cookie.split("=", 1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context()
            context.add_cookies([{"name": name, "value": value, "url": base}])
            page_bytes = {}
            for kind in KINDS:  # one untimed visit each first
                open_socket(f"ws://127.0.0.1:{port}/ws/conversations/{ids[kind]}/",
                            site.headers(port))
                page_bytes[kind] = open_page(context, f"{base}/c/{ids[kind]}/", True)["page_bytes"]
            for r in range(args.repeat):
                for kind in (KINDS if r % 2 == 0 else KINDS[::-1]):
                    # Socket openings are short and noisy on a shared machine: several each.
                    sockets = [open_socket(f"ws://127.0.0.1:{port}/ws/conversations/{ids[k]}/",
                                           site.headers(port))
                               for _ in range(args.sockets) for k in KINDS]
                    for k, opened in zip(KINDS * args.sockets, sockets, strict=True):
                        socket_samples[k].append(opened)
                    sample = {**sockets[KINDS.index(kind)],
                              **open_images_page(context, f"{base}/c/{ids[kind]}/", kind)}
                    samples[kind].append(sample)
                    shown = (f", images shown {sample['images_ms']:6.1f} ms"
                             if kind == "images" else "")
                    print(f"  round {r + 1}/{args.repeat} {kind:>6}: ws {sample['ws_ms']:6.1f} "
                          f"ms ({sample['ws_bytes']:,} bytes), first paint "
                          f"{sample['paint_ms']:6.1f} ms{shown}", flush=True)
            browser.close()
    finally:
        stop(server)
    report(samples, socket_samples, page_bytes, inline)
    print(f"\nserver log: {log}")


def open_images_page(context, url: str, kind: str) -> dict:
    """bench_open's first paint; for the images chat, also when the images on screen show."""
    if kind != "images":
        return open_page(context, url)
    page = context.new_page()
    try:
        page.goto(url, wait_until="commit", timeout=TIMEOUT * 1000)
        painted = page.wait_for_function(FIRST_REPLY, polling="raf", timeout=TIMEOUT * 1000)
        shown = page.wait_for_function(IMAGES_SHOWN, polling="raf", timeout=TIMEOUT * 1000)
        return {"paint_ms": painted.json_value(), "images_ms": shown.json_value()}
    finally:
        page.close()


if __name__ == "__main__":
    main()
