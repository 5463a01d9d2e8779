"""Benchmark: the offline model through the app (websocket frames) vs raw llama-cpp-python.

Same GGUF, context (2048), threads, prompt, sampling and seeds on both sides, in the same run:

- app: chatsite under daphne (SQLite, in-memory channel layer, no Gemini key), a
  conversation of the model "local" per run, one websocket client in this process sending a
  `send` frame. First token = send -> the first frame with a text op; tokens/s = (the turn's
  usage.total_output_tokens - 1) / (first text frame -> last text frame). The generation
  runs in the server's worker process (conversations/local/worker.py).
- raw: bench/local_raw.py, a process of plain llama-cpp-python (`create_chat_completion`,
  stream=True, the GGUF's chat template); it times itself from the call to its chunks.

Both are warm: one short warm-up generation each first (the app's worker loads the model on
its first turn), then app and raw runs alternate. A run during which other processes used
more than --max-other of the machine is measured again (--retries) and the quietest attempt
kept; no new run starts once a build's share of --budget is spent (each side has --min-runs
by then), and a run still going 30 s later is stopped. Targets: app tokens/s >= 0.9x raw,
and app first token <= raw + 100 ms.

The whole comparison runs with the portable engine (the venv's llama_cpp) and, when
$NATIVE_ENGINE_SITE holds a llama_cpp (`make bench` builds one with -DGGML_NATIVE=ON), again
with it first on PYTHONPATH of the raw process and of the server (whose worker inherits it);
which library each process really mapped is read from /proc.

Seeds: a conversation has no seed setting, so the worker passes none and llama-cpp-python
derives each call's seed from the previous one, from LLAMA_DEFAULT_SEED. The raw process
passes that same sequence explicitly, so run k of each samples alike; the output says how
many runs produced the same text on both sides.

    .venv/bin/python bench/bench_local.py [--runs 7] [--max-tokens 256] [--builds portable,native]
                                          [--threads N] [--retries 2] [--budget 240]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect  # noqa: E402

from bench.relays.processes import ROOT, cpu_seconds, machine_cpu, stop  # noqa: E402
from conversations.local import shipped_model_path  # noqa: E402
from conversations.local.engine import SAMPLING  # noqa: E402
from conversations.local.worker import default_threads  # noqa: E402
from devtools.ports import free_port, wait_listening  # noqa: E402

PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
N_CTX = 2048
PROMPT = ("Explain in detail how a bicycle works: the frame, the wheels, the chain and gears, "
          "and the brakes.")
LLAMA_DEFAULT_SEED = 0xFFFFFFFF  # llama_cpp.LLAMA_DEFAULT_SEED: a Llama made with no seed
TPS_TARGET = 0.9  # app tokens/s >= this x raw
FIRST_TOKEN_SLACK_MS = 100.0  # app first token <= raw + this
QUIET_SAMPLE = 0.5  # seconds of machine CPU that tell whether it is quiet now
CUT_AFTER = 30.0  # seconds past a build's --budget share: a run still going is stopped
FRAME_WINDOW_MS = 30  # conversations/runner.py FRAME_WINDOW
LEGEND = """\
Medians (the machine is shared and noisy). Each run first waits up to {quiet_wait:g} s for the
machine to be quiet; a run during which other processes used over {max_other:.0%} of it is run
again and the quietest attempt kept. runs: the runs the medians are over (the quiet ones
when each side has enough, else all: "~") / all runs. NOISY: the verdict is on disturbed
figures. first token: send frame -> first frame with text (app); create_chat_completion
call -> first text chunk (raw); both warm, the prompt's prefix cached from the last run.
tokens/s: (output tokens - 1) / (first text -> last text); the app's frames coalesce deltas
over {window} ms, so its span is exact to about that. frames: text frames per app turn.
others: share of the machine other processes used. CPU s per run: of each process.
"""
ENDED = {"completed", "failed", "cancelled", "incomplete", "requires_action"}
FLAGS_OF_NOTE = ("avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
                 "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


_seeds: list[int] = [LLAMA_DEFAULT_SEED]


def worker_seed(n: int) -> int:
    """The seed of the n-th generation (from 1) of a Llama made without one, given seed=None
    each time (llama_cpp/llama.py: set_seed(random.Random(self._seed).randint(0, 2**32)))."""
    while len(_seeds) <= n:
        _seeds.append(random.Random(_seeds[-1]).randint(0, 2**32))
    return _seeds[n]


# --- the machine and the builds ------------------------------------------------------------

def cpu_info() -> tuple[str, list[str], list[str]]:
    """(model name, flags of note it has, flags of note it lacks) from /proc/cpuinfo."""
    name, flags = platform.processor() or platform.machine(), set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            name = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return (name, [f for f in FLAGS_OF_NOTE if f in flags],
            [f for f in FLAGS_OF_NOTE if f not in flags])


@dataclass
class Build:
    name: str
    site: str | None  # prepended to PYTHONPATH; None: the venv's own llama_cpp
    cmake_args: str

    def env(self) -> dict[str, str]:
        paths = [self.site, str(ROOT), os.environ.get("PYTHONPATH")]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def find_builds(wanted: list[str]) -> tuple[list[Build], list[str]]:
    """The builds to measure, and notes about those that cannot be."""
    builds, notes = [], []
    venv_args = ROOT / ".venv" / "engine-cmake-args.txt"
    if "portable" in wanted:
        builds.append(Build("portable", None, venv_args.read_text().strip()
                            if venv_args.exists() else "?"))
    site = os.environ.get("NATIVE_ENGINE_SITE", "")
    if "native" in wanted:
        if site and (Path(site) / "llama_cpp").is_dir():
            args = Path(site).parent / "cmake-args.txt"
            builds.append(Build("native", site, args.read_text().strip()
                                if args.exists() else "?"))
        else:
            notes.append(f"no native build measured: NATIVE_ENGINE_SITE={site or '(unset)'} "
                         "holds no llama_cpp (make bench builds one)")
    return builds, notes


def mapped_engine(pid: int) -> str | None:
    """The directory of the libggml-cpu a process has loaded: which build it really runs."""
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            path = line.split(maxsplit=5)[-1]
            if "libggml-cpu" in path:
                return str(Path(path).parent)
    except OSError:
        pass
    return None


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


# --- the two sides -------------------------------------------------------------------------

def read_message(proc: subprocess.Popen, timeout: float) -> dict:
    """One JSON line from a child's stdout, or an error if it says nothing for `timeout` s."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"process {proc.pid} said nothing within {timeout:g} s"
                           if not ready else f"process {proc.pid} exited with {proc.wait()}")
    return json.loads(line)


class Raw:
    """bench/local_raw.py: plain llama-cpp-python, warm between runs."""

    def __init__(self, build: Build, threads: int, log: Path, timeout: float):
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "bench" / "local_raw.py"), "--model", shipped_model_path(),
             "--n-ctx", str(N_CTX), "--threads", str(threads)],
            cwd=ROOT, env=build.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log.open("a"), text=True, start_new_session=True)  # Ctrl-C is ours to handle
        self.info: dict = {}

    def wait_ready(self) -> dict:
        self.info = read_message(self.proc, self.timeout)
        return self.info

    def run(self, text: str, max_tokens: int, seed: int, cut_at: float | None = None) -> dict:
        """One generation; still running at `cut_at` (monotonic), it is stopped there."""
        request_id = uuid.uuid4().hex
        self._write({"type": "generate", "id": request_id, "max_tokens": max_tokens,
                     "messages": [{"role": "user", "content": text}], "sampling": SAMPLING,
                     "seed": seed})
        if cut_at is not None:
            ready, _, _ = select.select([self.proc.stdout], [], [],
                                        max(0.0, cut_at - time.monotonic()))
            if not ready:
                self._write({"type": "cancel", "id": request_id})
        return read_message(self.proc, self.timeout)

    def _write(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # it exits when stdin closes
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop(self.proc)


class App:
    """chatsite under daphne, serving conversations of the offline model."""

    def __init__(self, build: Build, workdir: Path, conversations: int, max_tokens: int,
                 threads: int, log: Path, timeout: float):
        self.timeout = timeout
        database = workdir / f"{build.name}.sqlite3"
        self.env = {
            **build.env(), "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "ENV_FILE": str(workdir / "no.env"), "DEBUG": "0",
            "SECRET_KEY": "bench-only-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": "", "GEMINI_API_KEY": "",
            "LOCAL_MODEL_PATH": shipped_model_path(), "LOCAL_MODEL_CONTEXT": str(N_CTX),
            "LOCAL_MODEL_THREADS": str(threads), "LOG_LEVEL": "WARNING"}
        # The sampling settings a conversation has are pinned to the engine's defaults.
        settings = {"temperature": SAMPLING["temperature"], "max_output_tokens": max_tokens}
        made = subprocess.run(
            [PYTHON, "bench/serve_chatsite.py", "setup", "--conversations", str(conversations),
             "--model", "local", "--generation-settings", json.dumps(settings)],
            cwd=ROOT, env=self.env, capture_output=True, text=True)
        if made.returncode:
            raise RuntimeError(f"serve_chatsite.py setup failed:\n{made.stderr[-2000:]}")
        made = json.loads(made.stdout.strip().splitlines()[-1])
        self.cookie, self.conversations = made["cookie"], made["conversations"]
        self.port = free_port()
        self.proc = subprocess.Popen(
            [PYTHON, "bench/serve_chatsite.py", "serve", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=log.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.worker_pid: int | None = None

    def wait_ready(self) -> None:
        wait_listening(self.port, self.proc)

    def find_worker(self) -> int | None:
        for pid in children(self.proc.pid):
            try:
                if b"conversations.local.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    self.worker_pid = pid
            except OSError:
                continue
        return self.worker_pid

    def run(self, text: str, cut_at: float | None = None, first_only: bool = False) -> dict:
        """One turn in a new conversation; still running at `cut_at` (monotonic), or after its
        first text with `first_only`, it is stopped (a `stop` frame)."""
        conversation = self.conversations.pop(0)
        return asyncio.run(asyncio.wait_for(self._turn(conversation, text, cut_at, first_only),
                                            self.timeout))

    async def _turn(self, conversation: str, text: str, cut_at: float | None,
                    first_only: bool) -> dict:
        url = f"ws://127.0.0.1:{self.port}/ws/conversations/{conversation}/"
        headers = {"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{self.port}"}
        async with connect(url, additional_headers=headers, compression=None, proxy=None,
                           max_size=None) as ws:
            snapshot = json.loads(await ws.recv())
            if snapshot.get("type") != "snapshot":
                raise RuntimeError(f"expected a snapshot, got {snapshot!r:.200}")
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "send", "client_id": str(uuid.uuid4()),
                                      "text": text, "parent_id": None}))
            turn_id = status = usage = error = None
            first = last = created = 0.0
            pieces: list[str] = []
            frames = text_frames = 0
            timeline = []  # [ms since send, text chars, status] per frame of the turn
            stopped = False
            while status not in ENDED:
                if turn_id and not stopped and (first_only and first or cut_at is not None
                                                and time.monotonic() >= cut_at):
                    await ws.send(json.dumps({"type": "stop", "turn_id": turn_id}))
                    stopped = True
                wait = None if stopped or cut_at is None else max(0.0, cut_at - time.monotonic())
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), wait))
                except TimeoutError:
                    continue
                now = time.perf_counter()
                kind = frame.get("type")
                if kind == "error":
                    raise RuntimeError(f"the server refused the turn: {frame}")
                if kind == "turn.created" and turn_id is None:
                    turn_id, created = frame["turn"]["id"], now
                if kind != "turn.update" or frame.get("turn_id") != turn_id:
                    continue
                frames += 1
                texts = [op[3] for op in frame["ops"] if op[0] == "text"]
                texts += [block.get("text", "") for op in frame["ops"] if op[0] == "step"
                          for block in op[2].get("content") or [] if isinstance(block, dict)]
                timeline.append([round((now - sent) * 1000, 1), sum(map(len, texts)),
                                 frame.get("status")])
                if any(texts):
                    first, last = first or now, now
                    pieces += texts
                    text_frames += 1
                status = frame.get("status", status)
                usage = frame.get("usage", usage)
                error = frame.get("error", error)
            ended = time.perf_counter()
        tokens = (usage or {}).get("total_output_tokens", 0)
        decode = last - first
        return {
            "first_token_ms": (first - sent) * 1000 if first else None,
            "decode_s": decode,
            "output_tokens": tokens,
            "tokens_per_s": (tokens - 1) / decode if tokens > 1 and decode > 0 else None,
            "prompt_tokens": (usage or {}).get("total_input_tokens"),
            "frames": frames,
            "text_frames": text_frames,
            "created_ms": (created - sent) * 1000,
            "end_after_last_text_ms": (ended - last) * 1000 if last else None,
            "total_ms": (ended - sent) * 1000,
            "status": status,
            "cut": stopped,
            "error": error,
            "text": "".join(pieces),
            "frames_timeline": timeline,
        }

    def close(self) -> None:
        stop(self.proc)  # daphne stops its engine, whose worker exits as its stdin closes
        if self.worker_pid is not None:
            deadline = time.monotonic() + 5
            while Path(f"/proc/{self.worker_pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            try:  # still there (the server was killed and it hung): it is ours to end
                if b"conversations.local.worker" in Path(
                        f"/proc/{self.worker_pid}/cmdline").read_bytes():
                    os.kill(self.worker_pid, signal.SIGKILL)
            except OSError:
                pass


# --- measuring -----------------------------------------------------------------------------

@dataclass
class Measured:
    """Every run of one build, both sides, and what the processes reported."""

    build: Build
    raw_info: dict = field(default_factory=dict)
    engines: dict = field(default_factory=dict)  # side -> directory of the mapped libggml-cpu
    warmup: dict = field(default_factory=dict)  # side -> the warm-up run
    runs: dict = field(default_factory=lambda: {"app": [], "raw": []})
    error: str | None = None


class Meter:
    """CPU of each of our processes and of the whole machine over one run."""

    def __init__(self, pids: dict[str, int | None], cores: int):
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.cores = cores

    def _sample(self) -> tuple[float, dict[str, float], tuple[float, float]]:
        cpu = {}
        for name, pid in self.pids.items():
            try:
                cpu[name] = cpu_seconds(pid)
            except OSError:
                cpu[name] = 0.0
        return time.monotonic(), cpu, machine_cpu()

    def __enter__(self) -> Meter:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.wall = end[0] - self.start[0]
        self.cpu = {name: end[1][name] - self.start[1][name] for name in end[1]}
        busy, total = (e - s for e, s in zip(end[2], self.start[2], strict=True))
        ours = sum(self.cpu.values()) / (self.wall * self.cores) if self.wall else 0.0
        self.others = max(0.0, (busy / total if total else 0.0) - ours)


def wait_quiet(max_other: float, limit: float) -> float:
    """Wait (up to `limit` s) for a moment (QUIET_SAMPLE s) in which the machine is quieter
    than `max_other`: between runs our processes idle, so what is busy is someone else.
    Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        busy0, total0 = machine_cpu()
        time.sleep(QUIET_SAMPLE)
        busy1, total1 = machine_cpu()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) <= max_other:
            break
    return time.monotonic() - started


def quietest(attempt, args: argparse.Namespace, deadline: float) -> dict:
    """Run `attempt()` once the machine is quiet (or has not been for --quiet-wait s); while
    other processes kept it busy, run it again (see --retries, --max-other) if time is left,
    and keep the quietest attempt."""
    attempts = []
    while True:
        waited = wait_quiet(args.max_other, min(args.quiet_wait, deadline - time.monotonic()))
        attempts.append(attempt())
        attempts[-1]["waited_s"] = round(waited, 1)
        if (attempts[-1]["others_load"] <= args.max_other or attempts[-1]["cut"]
                or len(attempts) > args.retries or time.monotonic() > deadline):
            break
    run = min(attempts, key=lambda run: (run["cut"], run["others_load"]))
    run.update(attempts=len(attempts),
               disturbed=run["cut"] or run["others_load"] > args.max_other)
    return run


def measure(build: Build, args: argparse.Namespace, workdir: Path, log: Path,
            cores: int, budget: float) -> Measured:
    result = Measured(build)
    raw = app = None
    try:
        raw = Raw(build, args.threads, log, args.timeout)
        app = App(build, workdir, 1 + args.runs * (1 + args.retries), args.max_tokens,
                  args.threads, log, args.timeout)
        result.raw_info = raw.wait_ready()
        app.wait_ready()
        # The worker starts and loads the model; the prompt's tokens go into both KV caches.
        result.warmup["app"] = app.run(PROMPT, first_only=True)
        result.warmup["raw"] = raw.run(PROMPT, 8, worker_seed(1))
        app.find_worker()
        result.engines = {"raw": mapped_engine(raw.proc.pid),
                          "app": mapped_engine(app.worker_pid) if app.worker_pid else None}
        pids = {"driver": os.getpid(), "daphne": app.proc.pid, "worker": app.worker_pid,
                "raw": raw.proc.pid}
        app_turns = 1  # the worker's generations so far: its next seed is worker_seed(n + 1)
        deadline = time.monotonic() + budget
        cut_at = deadline + CUT_AFTER  # a run still going then is stopped (a busy machine)

        def attempt(side: str, k: int) -> dict:
            nonlocal app_turns
            if side == "app" or len(result.runs["app"]) <= k:
                seed = worker_seed(app_turns + 1)  # what the worker samples with next
            else:  # the seed of this round's app run
                seed = result.runs["app"][k]["seed"]
            with Meter(pids, cores) as meter:
                if side == "app":
                    run = app.run(PROMPT, cut_at)
                    app_turns += 1
                else:
                    run = raw.run(PROMPT, args.max_tokens, seed, cut_at)
            run.update(seed=seed, cpu={n: round(s, 3) for n, s in meter.cpu.items()},
                       others_load=round(meter.others, 3))
            print(f"  {build.name:<8} {side} #{k + 1}: first token "
                  f"{fmt(run['first_token_ms'])} ms, {run['output_tokens']} tokens, "
                  f"{fmt(run['tokens_per_s'])} tokens/s (others used {meter.others:.0%} of "
                  "the machine)" + (", cut: out of time" if run["cut"] else ""), flush=True)
            return run

        for k in range(args.runs):
            if time.monotonic() >= cut_at or k >= args.min_runs and time.monotonic() > deadline:
                print(f"  {build.name}: time budget spent after {k} rounds", flush=True)
                break
            # Alternate which side goes first, so that a drift in the machine's load hits both.
            for side in ("app", "raw") if k % 2 == 0 else ("raw", "app"):
                if time.monotonic() >= cut_at:
                    break
                result.runs[side].append(quietest(
                    lambda side=side, k=k: attempt(side, k), args, deadline))
    except Exception as exc:  # noqa: BLE001 - a build that does not work is reported, not fatal
        result.error = f"{type(exc).__name__}: {exc}"
        print(f"  {build.name}: failed: {result.error} (log: {log})", flush=True)
    finally:
        for side in (app, raw):
            if side is not None:
                side.close()
    return result


# --- the report ----------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def median(runs: list[dict], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def spread(runs: list[dict], key: str, digits: int = 1) -> str:
    values = [run[key] for run in runs if run.get(key) is not None]
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}" if values else "-"


def used_runs(m: Measured, min_runs: int) -> tuple[dict[str, list[dict]], bool]:
    """The runs the medians are over: the quiet ones when each side has `min_runs` of them,
    else all of them; and whether they are disturbed (other processes busy)."""
    quiet = {side: [run for run in runs if not run["disturbed"]] for side, runs in m.runs.items()}
    if all(len(runs) >= min_runs for runs in quiet.values()):
        return quiet, False
    return m.runs, True


def summary(m: Measured, min_runs: int) -> dict:
    used, disturbed = used_runs(m, min_runs)
    out: dict = {"disturbed": disturbed}
    for side, runs in used.items():
        out[side] = {key: median(runs, key) for key in (
            "first_token_ms", "tokens_per_s", "output_tokens", "decode_s", "prompt_tokens",
            "text_frames", "end_after_last_text_ms", "others_load")}
        out[side]["runs"] = f"{len(runs)}/{len(m.runs[side])}"
        out[side]["cpu_s"] = {name: statistics.median(run["cpu"].get(name, 0.0) for run in runs)
                              for name in ("daphne", "worker", "raw", "driver")}
    return out


def print_build(m: Measured, s: dict, min_runs: int, max_other: float) -> None:
    b = m.build
    print(f"== {b.name}: {b.cmake_args}")
    print(f"  raw: llama-cpp-python {m.raw_info.get('llama_cpp', '?')}, "
          f"chat format {m.raw_info.get('chat_format', '?')}, {m.raw_info.get('threads')} "
          f"threads, loaded in {m.raw_info.get('load_ms', '?')} ms")
    print(f"  system info: {m.raw_info.get('system_info', '?')}")
    for side in ("raw", "app"):
        engine = m.engines.get(side)
        expected = b.site is None or (engine or "").startswith(b.site)
        print(f"  {side} process maps libggml-cpu from {engine or '?'}"
              + ("" if expected else "  <- NOT the build under test"))
    warm = m.warmup.get("app") or {}
    print(f"  cold app turn (worker start + model load): first token "
          f"{fmt(warm.get('first_token_ms'), 0)} ms")
    used, _ = used_runs(m, min_runs)
    print(f"  {'side':<5} {'runs':>5} {'first token ms':>14} {'(range)':>13} {'tokens/s':>9} "
          f"{'(range)':>11} {'tokens':>6} {'prompt':>6} {'frames':>6} {'others':>6}  "
          "CPU s per run")
    for side in ("raw", "app"):
        runs, row = used[side], s[side]
        cpu = row["cpu_s"]
        shown = (f"raw {cpu.get('raw', 0):.2f}" if side == "raw" else
                 f"worker {cpu.get('worker', 0):.2f} + daphne {cpu.get('daphne', 0):.2f}")
        print(f"  {side:<5} {row['runs']:>5} {fmt(row['first_token_ms']):>14} "
              f"{spread(runs, 'first_token_ms'):>13} {fmt(row['tokens_per_s']):>9} "
              f"{spread(runs, 'tokens_per_s'):>11} {fmt(row['output_tokens'], 0):>6} "
              f"{fmt(row['prompt_tokens'], 0):>6} {fmt(row['text_frames'], 0):>6} "
              f"{(row['others_load'] or 0):>6.0%}  {shown}")
    if s["disturbed"]:
        print(f"  ~ fewer than {min_runs} runs per side had other processes under "
              f"{max_other:.0%} of the machine: these medians are over every run, disturbed")
    pairs = list(zip(m.runs["app"], m.runs["raw"], strict=False))
    same = sum(a["text"] == r["text"] for a, r in pairs)
    print(f"  same text on both sides in {same}/{len(pairs)} rounds (same seeds); "
          f"app: {fmt(s['app']['end_after_last_text_ms'])} ms from the last text frame to the "
          "final status frame")


def checks_for(m: Measured, s: dict) -> list[dict]:
    app, raw = s["app"], s["raw"]
    found = []
    if app["tokens_per_s"] and raw["tokens_per_s"]:
        ratio = app["tokens_per_s"] / raw["tokens_per_s"]
        found.append({"check": f"{m.build.name}: app tokens/s >= {TPS_TARGET}x raw",
                      "value": f"{app['tokens_per_s']:.1f} vs {raw['tokens_per_s']:.1f} "
                               f"({ratio:.2f}x)", "ok": ratio >= TPS_TARGET,
                      "disturbed": s["disturbed"]})
    if app["first_token_ms"] is not None and raw["first_token_ms"] is not None:
        diff = app["first_token_ms"] - raw["first_token_ms"]
        found.append({"check": f"{m.build.name}: app first token <= raw + "
                               f"{FIRST_TOKEN_SLACK_MS:.0f} ms",
                      "value": f"{app['first_token_ms']:.1f} vs {raw['first_token_ms']:.1f} ms "
                               f"({diff:+.1f} ms)", "ok": diff <= FIRST_TOKEN_SLACK_MS,
                      "disturbed": s["disturbed"]})
    return found


def compare_builds(by_build: dict[str, dict]) -> list[str]:
    if "portable" not in by_build or "native" not in by_build:
        return []
    lines = []
    for side in ("raw", "app"):
        p, n = by_build["portable"][side], by_build["native"][side]
        if p["tokens_per_s"] and n["tokens_per_s"]:
            note = " ~ disturbed" if by_build["portable"]["disturbed"] or by_build["native"][
                "disturbed"] else ""
            lines.append(f"native vs portable, {side}: tokens/s {n['tokens_per_s']:.1f} vs "
                         f"{p['tokens_per_s']:.1f} ({n['tokens_per_s'] / p['tokens_per_s']:.2f}x)"
                         f", first token {fmt(n['first_token_ms'])} vs "
                         f"{fmt(p['first_token_ms'])} ms{note}")
    return lines


# --- main ----------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="measured runs per side and build")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="llama.cpp threads, both sides (default: the worker's own)")
    parser.add_argument("--builds", default="portable,native")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds one run may take")
    parser.add_argument("--retries", type=int, default=2, help="measure a run again (keeping "
                        "the quietest attempt) when other processes were busy during it")
    parser.add_argument("--max-other", type=float, default=0.15, help="... busier than this "
                        "share of all cores")
    parser.add_argument("--quiet-wait", type=float, default=10.0, help="seconds a run may "
                        "wait for the machine to be that quiet before it starts anyway")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds of measured runs, "
                        "all builds: no new run starts after that ...")
    parser.add_argument("--min-runs", type=int, default=3, help="... once each side has this many")
    args = parser.parse_args()
    args.builds = args.builds.split(",")
    return args


def main() -> None:
    args = parse_args()
    # Ctrl-C and a plain `kill` clean up (the children have sessions of their own, so they
    # hear neither); SIGINT too when started in the background, where it would be ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    cores = os.cpu_count() or 1
    name, has, lacks = cpu_info()
    builds, notes = find_builds(args.builds)
    print(f"offline model benchmark: {Path(shipped_model_path()).name}, n_ctx {N_CTX}, "
          f"{args.threads} threads, up to {args.max_tokens} tokens, {args.runs} runs per side "
          f"and build after a warm-up; sampling {SAMPLING}")
    print(f"{cores} cores: {name}; load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; the server, its worker, the raw "
          "process and this client share them")
    print(f"CPU flags of note: {' '.join(has) or '-'} (not: {' '.join(lacks) or '-'})")
    for note in notes:
        print(note)
    print(f"prompt: {PROMPT!r}\n", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-local-"))
    log = workdir / "processes.log"
    budget = args.budget / max(1, len(builds))
    try:
        measured = [measure(build, args, workdir, log, cores, budget) for build in builds]
    finally:
        for database in workdir.glob("*.sqlite3*"):
            database.unlink()

    print()
    by_build, checks = {}, []
    for m in measured:
        if m.error or not m.runs["app"] or not m.runs["raw"]:
            print(f"== {m.build.name}: not measured ({m.error or 'no runs'})\n")
            continue
        by_build[m.build.name] = summary(m, args.min_runs)
        print_build(m, by_build[m.build.name], args.min_runs, args.max_other)
        checks += checks_for(m, by_build[m.build.name])
        print()
    print(LEGEND.format(window=FRAME_WINDOW_MS, max_other=args.max_other,
                        quiet_wait=args.quiet_wait))
    for line in compare_builds(by_build):
        print(line)
    print()
    for check in checks:
        verdict = "PASS" if check["ok"] else "FAIL"
        if check["disturbed"]:  # a verdict on a busy machine's figures says little
            verdict = f"NOISY (would {verdict})"
        print(f"{verdict}  {check['check']}: {check['value']}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"local-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "machine": {"cores": cores, "cpu": name, "flags": has, "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": {**vars(args), "prompt": PROMPT, "sampling": SAMPLING, "n_ctx": N_CTX,
                   "model": shipped_model_path()},
        "builds": [{"name": m.build.name, "site": m.build.site, "cmake_args": m.build.cmake_args,
                    "raw_info": m.raw_info, "engines": m.engines, "error": m.error,
                    "warmup": m.warmup, "runs": m.runs, "summary": by_build.get(m.build.name)}
                   for m in measured],
        "checks": checks,
    }, indent=1))
    print(f"\nraw results: {out.relative_to(ROOT)}; process logs: {log}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted (every process it started is stopped)")
