"""Team deployment: two daphne processes sharing PostgreSQL and Redis.

A conversation streams to sockets on either process; a socket that joins on the other
process mid-stream gets the live state from the process that runs the turn; a stop sent
to either process stops it.
"""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from devtools.team import running_team, services_running, team_database
from tests.streaming import FINAL, replay, text_of

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not services_running(),
    reason="needs PostgreSQL on 5432 and Redis on 6379 (the team deployment's services)")


@pytest.fixture(scope="module", params=["classic", "pubsub"])
def team(request):
    """Two daphne processes on one PostgreSQL database and one Redis channel layer, of
    either kind channels_redis has (REDIS_CHANNEL_LAYER)."""
    with running_team(settings={"REDIS_CHANNEL_LAYER": request.param}) as team:
        yield team


async def receive(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def until_done(ws) -> list[dict]:
    frames = []
    while not (frames and frames[-1]["type"] == "turn.update"
               and frames[-1].get("status") in FINAL):
        frames.append(await receive(ws))
    return frames


async def until_text(ws) -> list[dict]:
    """Frames up to the first that carries reply text."""
    frames = []
    while not (frames and any(op[0] == "text" for op in frames[-1].get("ops", ()))):
        frames.append(await receive(ws))
    return frames


async def start_turn(ws, text: str) -> str:
    await ws.send(json.dumps({"type": "send", "client_id": str(uuid.uuid4()), "text": text,
                              "parent_id": None}))
    while True:
        frame = await receive(ws)
        if frame["type"] == "turn.created":
            return frame["turn"]["id"]


async def test_a_turn_run_by_one_process_streams_to_the_other(team):
    team.upstream.configure(delta_interval=0.02, deltas=80)
    async with team.connect(0) as runs_it, team.connect(1) as watches:
        await receive(runs_it)
        await receive(watches)
        turn_id = await start_turn(runs_it, "across processes")
        early = await until_text(runs_it)  # join once there is something to sync
        async with team.connect(1) as joins:
            snapshot = await receive(joins)
            assert snapshot["type"] == "snapshot"
            sync = await receive(joins)
            while sync["type"] != "turn.sync":  # live frames may come first; sync follows
                sync = await receive(joins)
            assert sync["turn"]["id"] == turn_id and text_of(sync["turn"]["steps"])
            joined = await until_done(joins)
        whole = early + await until_done(runs_it)
        watched = await until_done(watches)
    full, _ = replay(whole, turn_id)
    assert len(text_of(full).split()) == 80
    assert text_of(replay(watched, turn_id)[0]) == text_of(full)
    live = sync["turn"]
    assert text_of(replay(joined, turn_id, steps=live["steps"], seq=live["seq"])[0]) == \
        text_of(full)


async def test_a_stop_sent_to_the_other_process_stops_the_turn(team):
    team.upstream.configure(delta_interval=0.05, deltas=400)
    async with team.connect(0) as runs_it, team.connect(1) as other:
        await receive(runs_it)
        await receive(other)
        turn_id = await start_turn(runs_it, "stop me from elsewhere")
        frames = await until_text(other)
        await other.send(json.dumps({"type": "stop", "turn_id": turn_id}))
        frames += await until_done(other)
    assert frames[-1]["status"] == "cancelled"
    assert 0 < len(text_of(replay(frames, turn_id)[0]).split()) < 400


IDLE_SECONDS = float(os.getenv("TEAM_TEST_IDLE_SECONDS", "30"))


async def test_idle_sockets_stay_open_on_both_processes(team):
    """Redis clients time reads out after 5 s by default, as long as the layer's blocking
    reads last: idle sockets used to be closed with 1011 within a minute."""
    team.upstream.configure(delta_interval=0.01, deltas=5)
    async with team.connect(0) as a, team.connect(0) as b, team.connect(1) as c:
        for ws in (a, b, c):
            await receive(ws)
        await asyncio.sleep(IDLE_SECONDS)
        for ws in (a, b, c):
            assert ws.close_code is None, f"closed with {ws.close_code} while idle"
        turn_id = await start_turn(c, "after a quiet spell")
        frames = [await until_done(ws) for ws in (a, b, c)]
    for seen in frames:
        assert text_of(replay(seen, turn_id)[0]).strip() == "Echo: after a quiet spell"


def test_the_branch_walks_run_on_postgresql():
    """The recursive queries of the branch on screen, on the team deployment's database."""
    with team_database() as database:
        env = dict(os.environ, DATABASE_URL=database)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_branches.py", "tests/test_selectors.py",
             "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
