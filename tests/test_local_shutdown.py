"""A real daphne serving a local reply, stopped as an operator would: no process is left."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time

import pytest
import websockets

from conversations.local import local_model_available
from tests.daphne import SIGNED_IN_ALICE, daphne
from tests.processes import alive, children

pytestmark = pytest.mark.skipif(
    not local_model_available(), reason="the offline model is not installed")

SETUP = SIGNED_IN_ALICE + """
chat = services.conversation_create(owner=user, model="local")
services.conversation_update_settings(conversation=chat,
                                      generation_settings={"max_output_tokens": 400})
print(chat.pk)
"""


@pytest.fixture
def server(tmp_path):
    # A shell starts background jobs with SIGINT ignored, and children inherit that (the
    # tests run under `nohup ... &`): the server must hear it, as one started from a
    # terminal does. A Python handler here becomes the default in the child.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # faulthandler: a server that does not exit is sent SIGABRT and prints every
        # thread's stack into its log (see exits_within).
        with daphne(tmp_path, SETUP, PYTHONFAULTHANDLER="1") as running:
            session, chat = running.printed[-2:]
            yield running.process, running.port, session, chat
    finally:
        signal.signal(signal.SIGINT, previous)


def exits_within(process, seconds: float, log) -> None:
    """Wait for the server to exit; if it hangs, fail with where each of its threads is."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=10)
        pytest.fail(f"the server did not exit within {seconds:g} s; its log and stacks:\n"
                    + log.read_text(errors="replace")[-6000:])


async def start_a_reply(port: int, session: str, chat: str) -> None:
    """Open the conversation's socket and ask for a long reply until text streams."""
    async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/conversations/{chat}/",
            additional_headers={"Cookie": f"sessionid={session}",
                                "Origin": f"http://127.0.0.1:{port}"}) as ws:
        await ws.send(json.dumps({"type": "send", "client_id": "c1", "parent_id": None,
                                  "text": "Write a very long story about a dragon."}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            if any(op[0] == "text" for op in frame.get("ops", [])):
                return


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_server_mid_reply_leaves_no_process(server, sig, tmp_path):
    process, port, session, chat = server
    asyncio.run(start_a_reply(port, session, chat))
    workers = children(process.pid)
    assert len(workers) == 1  # the model's worker, generating

    process.send_signal(sig)

    exits_within(process, 20, tmp_path / "daphne.log")
    deadline = time.monotonic() + 10
    while alive(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(workers[0])


def test_a_killed_server_leaves_no_process(server):
    """Even SIGKILL, which runs no clean-up: the worker sees its stdin close and exits."""
    process, port, session, chat = server
    asyncio.run(start_a_reply(port, session, chat))
    workers = children(process.pid)

    process.kill()

    process.wait(timeout=10)  # SIGKILL cannot be caught: nothing to wait for but the kernel
    deadline = time.monotonic() + 10
    while alive(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(workers[0])
