"""A real daphne serving chatsite on a loopback port, on a SQLite file of its own: for tests
that need the deployed server (its message limits, its signals, its child processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.ports import free_port, stop, wait_listening

ROOT = Path(__file__).resolve().parents[1]
# Run in `manage.py shell` before the server starts: a signed-in user, and prints its
# session key (more setup may follow and print more).
SIGNED_IN_ALICE = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from conversations import services
user = User.objects.create_user("alice", password="x")
session = SessionStore()
session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
session.create()
print(session.session_key)
"""


def long_conversation(turns: int, text: str) -> str:
    """Setup code after SIGNED_IN_ALICE: alice's conversation of `turns` completed turns of
    `text` each, one branch; prints the conversation's id and its last turn's."""
    return f"""
from conversations.models import Turn
chat = services.conversation_create(owner=user, model="local")
parent = None
for n in range({turns}):
    parent = Turn.objects.create(
        conversation=chat, client_id=f"c{{n}}", parent=parent, status="completed",
        input=[{{"type": "text", "text": {text!r}}}],
        steps=[{{"type": "model_output", "content": [{{"type": "text", "text": "ok"}}]}}])
print(chat.pk, parent.pk)
"""


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    printed: list[str]  # what the setup code printed, split on whitespace

    def socket_url(self, conversation_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/conversations/{conversation_id}/"

    def headers(self, session_key: str) -> dict[str, str]:
        return {"Cookie": f"sessionid={session_key}", "Origin": f"http://127.0.0.1:{self.port}"}


@contextmanager
def daphne(tmp_path: Path, setup: str, **env: str) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "MEDIA_ROOT": str(tmp_path), "ALLOWED_HOSTS": "127.0.0.1", "GEMINI_API_KEY": "",
           "DJANGO_SETTINGS_MODULE": "chatsite.settings", **env}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True, cwd=ROOT)
    printed = subprocess.run([*manage, "shell", "-c", setup], env=env, check=True, cwd=ROOT,
                             capture_output=True, text=True).stdout
    with open(tmp_path / "daphne.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "chatsite.asgi:application"], env=env, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT)
        try:
            wait_listening(port, process)
            # Django's shell may print its own lines first: keep what the setup printed last.
            yield Server(process, port, printed.split())
        finally:
            stop(process)
