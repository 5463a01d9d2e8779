"""/healthz: what a load balancer sees, in-process and from a real daphne whose database or
channel layer is (un)reachable."""

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client

from devtools.ports import free_port, wait_listening
from devtools.team import POSTGRES, REDIS, services_running

ROOT = Path(__file__).resolve().parents[1]


def test_it_is_ok_on_sqlite_and_the_in_memory_layer(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
async def test_it_is_ok_on_the_async_path(async_client):
    response = await async_client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_it_needs_no_login_session_or_allowed_host(db):
    # A load balancer asks by IP address, with no cookie.
    response = Client().get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert not response.cookies


def test_it_is_not_redirected_to_https(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/accounts/login/").status_code == 301  # the redirect is on


def test_it_only_answers_reads(db):
    assert Client().post("/healthz").status_code == 405


def test_a_layer_that_answers_too_late_is_unavailable(db, settings, monkeypatch, caplog):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def never(channel):
        await asyncio.sleep(60)

    settings.HEALTHZ_TIMEOUT = 1
    monkeypatch.setattr(layer, "receive", never)
    response = Client().get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}
    assert "channel layer is unavailable: no answer in 1 s" in caplog.text


@contextmanager
def daphne(tmp_path: Path, **env: str) -> Iterator[tuple[int, Path]]:
    """A daphne with this environment and no setup: its database may not even exist."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "ALLOWED_HOSTS": "127.0.0.1", "GEMINI_API_KEY": "", "REDIS_URL": "",
           "DJANGO_SETTINGS_MODULE": "chatsite.settings", **env}
    log = tmp_path / "daphne.log"  # its logging; the access log goes to stdout, apart
    with open(log, "wb") as out, open(tmp_path / "access.log", "wb") as access:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "chatsite.asgi:application"], env=env, cwd=ROOT, stdout=access, stderr=out)
    try:
        wait_listening(port, process)
        yield port, log
    finally:
        process.terminate()
        process.wait(10)


def get_health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_unreachable_database_is_unavailable_without_details(tmp_path):
    closed = free_port()
    with daphne(tmp_path, DATABASE_URL=f"postgres://chatsite:secret@127.0.0.1:{closed}/chatsite",
                ) as (port, log):
        status, body = get_health(port)
    assert (status, body) == (503, {"status": "unavailable"})
    logged = log.read_text()
    assert "the database is unavailable" in logged and str(closed) in logged


def test_an_unreachable_redis_is_unavailable(tmp_path):
    closed = free_port()
    with daphne(tmp_path, REDIS_URL=f"redis://127.0.0.1:{closed}/0") as (port, log):
        status, body = get_health(port)
    assert (status, body) == (503, {"status": "unavailable"})
    assert "the channel layer is unavailable" in log.read_text()
    assert "the database is unavailable" not in log.read_text()


@pytest.mark.skipif(not services_running(),
                    reason="needs PostgreSQL on 5432 and Redis on 6379")
def test_it_is_ok_on_postgresql_and_redis(tmp_path):
    with daphne(tmp_path, DATABASE_URL=f"{POSTGRES}/postgres", REDIS_URL=REDIS) as (port, log):
        assert get_health(port) == (200, {"status": "ok"})
        assert get_health(port) == (200, {"status": "ok"})  # and again, on the kept connection
    assert "unavailable" not in log.read_text()
