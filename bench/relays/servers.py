"""The relay servers under test: how to start each one and reach its conversations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import httpx

from bench.relays.processes import PYTHON, ROOT

# The benchmark's clients are one user with N conversations open and streaming at once: the
# per-user limits (which would refuse most of them, as they should for a real user) are
# lifted, so that the relay is what is measured.
ONE_USER_IS_EVERYONE = {"MAX_RUNNING_TURNS_PER_USER": "100000", "MAX_SOCKETS_PER_USER": "100000"}


class Relay:
    """A relay server the clients stream through; fresh processes (`processes` of them,
    each on its own port) per step."""

    name = ""
    description = ""
    processes = 1
    services: tuple[str, ...] = ()  # command names of the servers it uses (their CPU counts)

    def __init__(self, workdir: Path, upstream: str):
        self.workdir, self.upstream = workdir, upstream

    def prepare(self, n: int) -> None:
        """Ready the state a step of N conversations starts from."""

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def urls(self, ports: list[int], n: int) -> list[str]:
        """N conversations' sockets, dealt round the processes."""
        return [f"ws://127.0.0.1:{ports[i % len(ports)]}/ws/conversations/"
                f"{i:08d}-0000-4000-8000-000000000000/" for i in range(n)]

    def warmup_url(self, port: int) -> str:
        """A conversation outside the N measured ones."""
        return f"ws://127.0.0.1:{port}/ws/conversations/ffffffff-0000-4000-8000-000000000000/"

    def headers(self, port: int) -> dict[str, str]:
        return {}

    def writes(self, ports: list[int]) -> dict[str, int] | None:
        """Database writes so far by statement and table (None: the relay has no database)."""
        return None

    def close(self) -> None:
        """Let go of what the relay set up for its steps."""


class BareRelay(Relay):
    name = "bare"
    description = "asyncio: httpx-sse in, websockets out, no Django (the floor)"

    def command(self, port: int) -> list[str]:
        return [PYTHON, "-m", "bench.relays.bare", "--port", str(port),
                "--upstream", self.upstream]


class DaphneFloor(Relay):
    name = "daphne"
    description = ("the bare relay's work as a raw ASGI app under daphne, no Django or "
                   "Channels (the floor of daphne itself)")

    def command(self, port: int) -> list[str]:
        return [PYTHON, "-m", "bench.relays.daphne_floor", "--port", str(port),
                "--upstream", self.upstream]


class NaiveRelay(Relay):
    name = "naive"
    description = ("Channels under daphne: stock InMemoryChannelLayer (capacity 10,000), "
                   "one group_send and one frame per delta")

    def command(self, port: int) -> list[str]:
        return [PYTHON, "-m", "bench.relays.naive", "--port", str(port),
                "--upstream", self.upstream]


class Chatsite(Relay):
    name = "chatsite"
    description = "chatsite under daphne (SQLite file database, in-memory channel layer)"

    def __init__(self, workdir: Path, upstream: str, conversations: int,
                 settings: dict[str, str]):
        super().__init__(workdir, upstream)
        self.settings = settings
        self.template = workdir / "template.sqlite3"
        self.database = workdir / "chatsite.sqlite3"
        setup = subprocess.run(
            [PYTHON, "bench/serve_chatsite.py", "setup", "--conversations", str(conversations)],
            cwd=ROOT, env=self.env(self.template), capture_output=True, text=True, check=True)
        made = json.loads(setup.stdout.strip().splitlines()[-1])
        self.cookie, self.conversations = made["cookie"], made["conversations"]

    def env(self, database: Path | None = None) -> dict[str, str]:
        return {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings",
                "ENV_FILE": str(self.workdir / "no.env"), "DEBUG": "0",
                "SECRET_KEY": "bench-only-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": f"sqlite:///{database or self.database}", "REDIS_URL": "",
                "GEMINI_API_KEY": "test-key", "GEMINI_API_BASE_URL": self.upstream,
                "LOG_LEVEL": "WARNING", **ONE_USER_IS_EVERYONE, **self.settings}

    def prepare(self, n: int) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.database)

    def command(self, port: int) -> list[str]:
        return [PYTHON, "bench/serve_chatsite.py", "serve", "--port", str(port)]

    def urls(self, ports: list[int], n: int) -> list[str]:
        return [f"ws://127.0.0.1:{ports[i % len(ports)]}/ws/conversations/{cid}/"
                for i, cid in enumerate(self.conversations[:n])]

    def warmup_url(self, port: int) -> str:
        return f"ws://127.0.0.1:{port}/ws/conversations/{self.conversations[-1]}/"

    def headers(self, port: int) -> dict[str, str]:
        return {"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{port}"}

    def writes(self, ports: list[int]) -> dict[str, int]:
        total: Counter[str] = Counter()
        for port in ports:
            total.update(httpx.get(f"http://127.0.0.1:{port}/_bench/stats").json()["writes"])
        return dict(total)


class ChatsiteTeam(Chatsite):
    """chatsite as a team runs it: `processes` daphne processes on PostgreSQL, with the
    Redis channel layer `layer` ("classic" or "pubsub") or, on one process, the in-memory
    one ("memory": what Redis costs is the difference). Each step starts from a copy of a
    template database (CREATE DATABASE ... TEMPLATE) and an empty Redis database."""

    def __init__(self, workdir: Path, upstream: str, conversations: int,
                 settings: dict[str, str], *, layer: str, processes: int,
                 postgres: str, redis: str):
        if layer == "memory" and processes > 1:
            raise ValueError("the in-memory layer does not reach other processes")
        self.layer, self.processes, self.postgres, self.redis = layer, processes, postgres, redis
        self.services = ("postgres",) if layer == "memory" else ("postgres", "redis-server")
        self.name = f"pg-{layer}" + (f"-x{processes}" if processes > 1 else "")
        self.description = (f"chatsite under {processes} daphne process"
                            f"{'es' if processes > 1 else ''}, PostgreSQL, "
                            + ("the in-memory channel layer" if layer == "memory"
                               else f"Redis ({layer} layer)"))
        tag = uuid.uuid4().hex[:8]
        self.template_name, self.step_name = f"bench_template_{tag}", f"bench_step_{tag}"
        self.admin(f'CREATE DATABASE "{self.template_name}"')
        self.database_url = f"{postgres}/{self.template_name}"
        super().__init__(workdir, upstream, conversations, settings)
        self.database_url = f"{postgres}/{self.step_name}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.postgres}/postgres", autocommit=True) as connection:
            connection.execute(sql)

    def env(self, database: Path | None = None) -> dict[str, str]:
        return {**super().env(), "DATABASE_URL": self.database_url,
                **({"REDIS_URL": ""} if self.layer == "memory" else
                   {"REDIS_URL": self.redis, "REDIS_CHANNEL_LAYER": self.layer}),
                **self.settings}

    def prepare(self, n: int) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{self.step_name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{self.step_name}" TEMPLATE "{self.template_name}"')
        if self.layer != "memory":
            import redis

            with redis.Redis.from_url(self.redis) as client:
                client.flushdb()

    def close(self) -> None:
        for name in (self.step_name, self.template_name):
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


RELAYS = {"bare": BareRelay, "daphne": DaphneFloor, "naive": NaiveRelay, "chatsite": Chatsite}
# The layers of the team relays, named pg-<layer>[-x<processes>].
TEAM_LAYERS = ("memory", "classic", "pubsub")
