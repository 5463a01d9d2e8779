"""The team deployment on this machine: daphne processes sharing a fresh PostgreSQL database
and a Redis channel layer, with the fake upstream as their Gemini (tests/test_team.py and
bench/soak_team.py start it).

    with running_team(members=3) as team:      # three signed-in users, a conversation each
        async with team.connect(1, member=2) as ws:   # member 2's socket on process 1
            ...
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import websockets

from devtools.fake_upstream.server import FakeUpstream
from devtools.ports import free_port, stop, wait_listening

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.getenv("TEAM_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.getenv("TEAM_TEST_REDIS", "redis://127.0.0.1:6379/7")
MODEL = "gemini-3.5-flash"

# Run in `manage.py shell`: MEMBERS users, each signed in (a session) with a conversation of
# their own; prints one "session_key conversation_id" line per user. No passwords: hashing
# one costs a third of a second.
SETUP = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from conversations import services
for n in range(MEMBERS):
    user = User.objects.create_user(f"member{n}")
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                    BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
    session.create()
    chat = services.conversation_create(owner=user, model=MODEL)
    print(session.session_key, chat.pk)
"""


def reachable(url: str) -> bool:
    """Whether something accepts connections at the host and port of `url`."""
    parts = urlsplit(url)
    with closing(socket.socket()) as s:
        s.settimeout(0.5)
        return s.connect_ex((parts.hostname, parts.port)) == 0


def services_running() -> bool:
    """PostgreSQL and Redis, the team deployment's services, answer on this machine."""
    return reachable(POSTGRES) and reachable(REDIS)


@contextmanager
def team_database(server: str = POSTGRES) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (its URL), dropped afterwards."""
    import psycopg

    name = f"chatsite_team_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Member:
    """A signed-in user and their conversation."""

    session: str
    conversation: str


@dataclass
class Team:
    upstream: FakeUpstream
    ports: list[int]
    processes: list[subprocess.Popen]
    members: list[Member]

    def connect(self, process: int, member: int = 0, **options) -> websockets.connect:
        """A socket of `member`'s conversation on daphne process `process`. Like a browser,
        it sends no pings of its own (daphne pings, and the client answers)."""
        port, who = self.ports[process], self.members[member]
        return websockets.connect(
            f"ws://127.0.0.1:{port}/ws/conversations/{who.conversation}/",
            additional_headers={"Cookie": f"sessionid={who.session}",
                                "Origin": f"http://127.0.0.1:{port}"},
            ping_interval=None, **options)


@contextmanager
def running_team(*, members: int = 1, processes: int = 2, redis: str = REDIS,
                 logs: Path | None = None, settings: dict[str, str] | None = None
                 ) -> Iterator[Team]:
    """`processes` daphne processes on one fresh database and the Redis at `redis`, with
    `members` signed-in users. Each process writes its output to logs/daphne-<n>.log when
    `logs` is given. `settings` are more environment variables for the app."""
    with ExitStack() as stack:
        upstream = stack.enter_context(FakeUpstream())
        database = stack.enter_context(team_database())
        env = {**os.environ, "ENV_FILE": os.devnull, "DEBUG": "0",
               "SECRET_KEY": os.getenv("SECRET_KEY") or secrets.token_urlsafe(50),
               "DATABASE_URL": database, "REDIS_URL": redis, "ALLOWED_HOSTS": "127.0.0.1",
               "GEMINI_API_KEY": upstream.api_key, "GEMINI_API_BASE_URL": upstream.base_url,
               **(settings or {})}
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True,
                       cwd=ROOT)
        setup = f"MEMBERS = {members}\nMODEL = {MODEL!r}\n{SETUP}"
        printed = subprocess.run([*manage, "shell", "-c", setup], env=env, check=True,
                                 cwd=ROOT, capture_output=True, text=True).stdout
        # Django's shell may print its own lines first: the members' are the last ones.
        lines = printed.splitlines()[-members:]
        team = Team(upstream, [free_port() for _ in range(processes)], [],
                    [Member(*line.split()) for line in lines])
        for n, port in enumerate(team.ports):
            output = (stack.enter_context((logs / f"daphne-{n}.log").open("wb")) if logs
                      else subprocess.DEVNULL)
            process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                 "chatsite.asgi:application"], env=env, cwd=ROOT, stdout=output,
                stderr=subprocess.STDOUT)
            stack.callback(stop, process)
            team.processes.append(process)
        for port, process in zip(team.ports, team.processes, strict=True):
            wait_listening(port, process)
        yield team
