"""The relay servers under test: how to start each one and reach its conversations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from bench.relays.processes import PYTHON, ROOT

# The benchmark's clients are one user with N conversations open and streaming at once: the
# per-user limits (which would refuse most of them, as they should for a real user) are
# lifted, so that the relay is what is measured.
ONE_USER_IS_EVERYONE = {"MAX_RUNNING_TURNS_PER_USER": "100000", "MAX_SOCKETS_PER_USER": "100000"}


class Relay:
    """A relay server the clients stream through; one fresh process per step."""

    name = ""
    description = ""

    def __init__(self, workdir: Path, upstream: str):
        self.workdir, self.upstream = workdir, upstream

    def prepare(self, n: int) -> None:
        """Ready the state a step of N conversations starts from."""

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def urls(self, port: int, n: int) -> list[str]:
        return [f"ws://127.0.0.1:{port}/ws/conversations/{i:08d}-0000-4000-8000-000000000000/"
                for i in range(n)]

    def warmup_url(self, port: int) -> str:
        """A conversation outside the N measured ones."""
        return f"ws://127.0.0.1:{port}/ws/conversations/ffffffff-0000-4000-8000-000000000000/"

    def headers(self, port: int) -> dict[str, str]:
        return {}

    def writes(self, port: int) -> dict[str, int] | None:
        """Database writes so far by statement and table (None: the relay has no database)."""
        return None


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

    def urls(self, port: int, n: int) -> list[str]:
        return [f"ws://127.0.0.1:{port}/ws/conversations/{cid}/"
                for cid in self.conversations[:n]]

    def warmup_url(self, port: int) -> str:
        return f"ws://127.0.0.1:{port}/ws/conversations/{self.conversations[-1]}/"

    def headers(self, port: int) -> dict[str, str]:
        return {"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{port}"}

    def writes(self, port: int) -> dict[str, int]:
        return httpx.get(f"http://127.0.0.1:{port}/_bench/stats").json()["writes"]


RELAYS = {"bare": BareRelay, "daphne": DaphneFloor, "naive": NaiveRelay, "chatsite": Chatsite}
