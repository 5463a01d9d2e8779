"""Benchmark: a 1 GiB file sent through the app's Files API upload path, against a plain httpx
upload of the same file from disk, both to the fake Files API over loopback.

The fake upstream runs in a process of its own and is told not to keep what it receives (it
counts and hashes it, as the real service does). Each upload runs in a fresh child process,
so its memory is measured from a clean start:
  (a) plain — sync httpx: the resumable start, then the whole file in one
              `upload, finalize` request, streamed by httpx from the open file;
  (b) ours  — `InteractionsClient.upload_file` with the file open as the app opens an
              attachment (media.py): 8 MiB chunks read one at a time in a worker thread, the
              next read while the current one is sent, progress after each chunk.
Reports, per variant, the median over the runs of the throughput (MiB/s), of the child's
CPU time (the machine is shared: wall time is noisy, CPU time less so) and of the peak
resident memory above the child's idle level (VmHWM, reset through /proc/self/clear_refs,
minus VmRSS just before the upload); targets: ours < 64 MiB above idle, ≥ 0.8x plain.

    .venv/bin/python bench/bench_upload.py [--size-mib 1024] [--reps 3] [--random]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench_stream import start_fake as start_fake_upstream  # noqa: E402

from conversations.interactions import InteractionsClient  # noqa: E402

KEY = "bench-key"
MIB = 1024 * 1024
MIME = "video/mp4"


def start_fake() -> tuple[subprocess.Popen[str], str]:
    """The fake upstream in its own process, keeping no upload bytes."""
    proc, base = start_fake_upstream()
    httpx.post(f"{base}/_control/config", json={"keep_upload_bytes": False}).raise_for_status()
    return proc, base


def make_file(directory: str, size: int, random: bool) -> Path:
    """A sparse file (reads as zeros, costs no disk) or one of random bytes."""
    path = Path(directory) / "video.mp4"
    with open(path, "wb") as out:
        if random:
            for _ in range(size // (8 * MIB)):
                out.write(os.urandom(8 * MIB))
            out.write(os.urandom(size % (8 * MIB)))
        else:
            out.truncate(size)
    return path


# --- the child: one upload, measured -------------------------------------------------------

def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def upload_plain(base: str, path: Path) -> dict:
    size = path.stat().st_size
    with httpx.Client(timeout=httpx.Timeout(300.0)) as http:
        start = http.post(f"{base}/upload/v1beta/files", json={"file": {"mime_type": MIME}},
                          headers={"x-goog-api-key": KEY, "X-Goog-Upload-Protocol": "resumable",
                                   "X-Goog-Upload-Command": "start",
                                   "X-Goog-Upload-Header-Content-Length": str(size),
                                   "X-Goog-Upload-Header-Content-Type": MIME})
        with open(path, "rb") as source:
            done = http.post(start.headers["x-goog-upload-url"], content=source, headers={
                "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0",
                "Content-Length": str(size)})
        done.raise_for_status()
        return done.json()["file"]


async def upload_ours(base: str, path: Path) -> dict:
    chunks = []
    async with InteractionsClient(KEY, base_url=base) as client:
        with open(path, "rb") as source:
            return await client.upload_file(source, mime_type=MIME, display_name=path.name,
                                            progress=lambda sent, total: chunks.append(sent))


def child(variant: str, base: str, path: Path) -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS from here on
    idle = status_kib("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    file = (upload_plain(base, path) if variant == "plain"
            else asyncio.run(upload_ours(base, path)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert int(file["sizeBytes"]) == path.stat().st_size, file
    print(json.dumps({"seconds": seconds, "cpu": cpu, "idle_kib": idle,
                      "peak_kib": status_kib("VmHWM")}))


def measure(variant: str, base: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--base", base,
                          "--file", str(path)], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- the parent: the runs, the report ------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--random", action="store_true", help="random bytes, not a sparse file")
    parser.add_argument("--child", choices=("plain", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base, args.file)
        return
    size = args.size_mib * MIB
    fake, base = start_fake()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
            path = make_file(tmp, size, args.random)
            runs: dict[str, list[dict]] = {"plain": [], "ours": []}
            for rep in range(args.reps):
                for variant in ("plain", "ours") if rep % 2 == 0 else ("ours", "plain"):
                    result = measure(variant, base, path)
                    runs[variant].append(result)
                    print(f"  run {rep + 1} {variant:5}: {size / MIB / result['seconds']:7.0f} "
                          f"MiB/s, peak {(result['peak_kib'] - result['idle_kib']) / 1024:6.1f} "
                          "MiB above idle", flush=True)
    finally:
        fake.terminate()
        fake.wait(10)
    report(runs, size, args)


def report(runs: dict[str, list[dict]], size: int, args: argparse.Namespace) -> None:
    rate = {v: statistics.median(size / MIB / r["seconds"] for r in rs) for v, rs in runs.items()}
    peak = {v: statistics.median((r["peak_kib"] - r["idle_kib"]) / 1024 for r in rs)
            for v, rs in runs.items()}
    cpu = {v: statistics.median(r["cpu"] for r in rs) for v, rs in runs.items()}
    kind = "random" if args.random else "sparse"
    print(f"upload of {size / MIB:.0f} MiB ({kind}) to the fake Files API, medians of "
          f"{args.reps} runs:")
    for variant in ("plain", "ours"):
        print(f"  {variant:5}  {rate[variant]:7.0f} MiB/s   peak {peak[variant]:6.1f} MiB "
              f"above idle   CPU {cpu[variant]:5.2f} s (the uploading process)")
    ratio = rate["ours"] / rate["plain"]
    print(f"  ours/plain throughput {ratio:.2f}x (target >= 0.8x); ours peak "
          f"{peak['ours']:.1f} MiB above idle (target < 64 MiB)")


if __name__ == "__main__":
    main()
