"""A real daphne serving a local reply, stopped as an operator would: no process is left."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets

from conversations.local import local_model_available
from tests.ports import free_port, wait_listening

pytestmark = pytest.mark.skipif(
    not local_model_available(), reason="the offline model is not installed")

ROOT = Path(__file__).resolve().parents[1]
SETUP = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from conversations import services
user = User.objects.create_user("alice", password="x")
session = SessionStore()
session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
session.create()
chat = services.conversation_create(owner=user, model="local")
services.conversation_update_settings(conversation=chat,
                                      generation_settings={"max_output_tokens": 400})
print(session.session_key, chat.pk)
"""


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
               MEDIA_ROOT=str(tmp_path), ALLOWED_HOSTS="127.0.0.1", GEMINI_API_KEY="",
               DJANGO_SETTINGS_MODULE="chatsite.settings")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)
    session, chat = subprocess.run([*manage, "shell", "-c", SETUP], env=env, check=True,
                                   cwd=ROOT, capture_output=True, text=True).stdout.split()[-2:]
    with open(tmp_path / "daphne.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "chatsite.asgi:application"], env=env, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT)
        try:
            wait_listening(port, process)
            yield process, port, session, chat
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)


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
def test_stopping_the_server_mid_reply_leaves_no_process(server, sig):
    process, port, session, chat = server
    asyncio.run(start_a_reply(port, session, chat))
    workers = children(process.pid)
    assert len(workers) == 1  # the model's worker, generating

    process.send_signal(sig)

    process.wait(timeout=20)
    deadline = time.monotonic() + 10
    while not gone(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(workers[0])


def test_a_killed_server_leaves_no_process(server):
    """Even SIGKILL, which runs no clean-up: the worker sees its stdin close and exits."""
    process, port, session, chat = server
    asyncio.run(start_a_reply(port, session, chat))
    workers = children(process.pid)

    process.kill()

    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while not gone(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(workers[0])
