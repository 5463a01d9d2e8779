"""The team soak (bench/soak_team.py), briefly: idle sockets and light traffic on two daphne
processes sharing PostgreSQL and Redis. Memory growth needs the full run to judge; here every
close, turn, gap and idle socket is checked as the full run checks it."""

import asyncio
import os

import pytest

from devtools.soak import ROUNDS, Close, Plan, Report, members_for, problems, soak
from devtools.soak.memory import MIB, figures, slope
from devtools.team import running_team, services_running

SECONDS = float(os.getenv("SOAK_TEST_SECONDS", "30"))



@pytest.mark.skipif(not services_running(), reason="needs PostgreSQL on 5432 and Redis on "
                    "6379 (the team deployment's services)")
@pytest.mark.timeout(SECONDS + 240)
def test_a_short_soak_closes_no_socket_and_loses_no_reply(tmp_path):
    # Three chats start at different rounds, so each kind of round comes within three.
    plan = Plan(seconds=SECONDS, idle=6, chats=3, pause=(1.0, 2.0), sample_every=2.0,
                warmup=SECONDS / 3, turn_timeout=60.0)
    with running_team(members=members_for(plan), logs=tmp_path) as team:
        report = asyncio.run(soak(team, plan))
    logs = "".join(log.read_text(errors="replace")[-3000:] for log in tmp_path.glob("*.log"))
    assert problems(report, None, None) == [], (report.failures, report.unexpected, logs)
    assert set(report.rounds) == set(ROUNDS), report.rounds
    assert report.turns["completed"] >= plan.chats
    assert report.sockets_opened == report.closed_by_us == plan.idle + 2 * plan.chats + \
        report.rounds["reconnect"] + report.rounds["rejoin"]
    memory = figures(report.samples, plan.warmup, report.elapsed)
    assert len(memory) == 2 and all(20 < m.start <= m.max < 1000 for m in memory), memory


def test_growth_is_the_slope_over_the_second_half_after_the_warm_up():
    # Two processes: one grows during the warm-up and then holds, one grows 1 MiB a minute.
    samples = [(t, [int((100 + min(t, 60) / 6) * MIB), int((100 + t / 60) * MIB)])
               for t in range(0, 601, 5)]
    steady, leaking = figures(samples, warmup=120, elapsed=600)
    assert (steady.start, steady.end, steady.max) == (110, 110, 110)
    assert steady.slope == 0
    assert leaking.start == 102 and leaking.end == leaking.max == 110
    assert abs(leaking.slope - 1) < 1e-6
    assert slope([(0, 1), (1, 2)]) is None  # too few samples to say


def test_the_verdict_names_each_problem():
    report = Report(Plan(), processes=2)
    report.turns["completed"] = 10
    assert problems(report, None, None) == []
    report.unexpected.append(Close("idle 3", 1, 1011, "", 42.0))
    report.fail("chat 0: turn t1 ended 'failed'")
    report.gaps = 2
    samples = [(t, [100 * MIB, int((100 + t / 60) * MIB)]) for t in range(0, 601, 5)]
    found = problems(report, figures(samples, 120, 600), max_growth=0.25)
    assert found == ["1 unexpected socket closes", "1 turns failed", "2 frames skipped a seq",
                     "process 1: memory grew 1.00 MiB/min (limit 0.25)"]
