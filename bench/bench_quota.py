"""Benchmark: what checking a user's quota costs on each new turn (policies.usage_of).

Fills a fresh database (SQLite in a temporary file, or a PostgreSQL server given as
--postgres, where a scratch database is created and dropped) with --users users of
--conversations conversations of --turns finished turns each, spread over --days days,
and one heavy user with ten times the conversations. Then times the policy query and the
usage query for the heavy user (median of --repeat), with the query as shipped and
without its `conversation.updated` bound, and prints each query's plan.

    .venv/bin/python bench/bench_quota.py [--postgres postgres://postgres@127.0.0.1:5432]
                                          [--users 20] [--conversations 100] [--turns 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@contextmanager
def database(postgres: str):
    """A scratch database: a SQLite file, or one created (and dropped) on `postgres`."""
    if not postgres:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        return
    import psycopg

    name = f"chatsite_bench_{os.getpid()}"
    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as server:
        server.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{postgres}/{name}"
        finally:  # FORCE: Django's connection to it is still open
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill(args) -> int:
    """The data; returns the heavy user's id."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from conversations.models import Conversation, Turn

    # The bench sets the times itself: the fields would stamp every row "now".
    Turn._meta.get_field("created").auto_now_add = False
    Conversation._meta.get_field("updated").auto_now = False
    now = timezone.now()
    span = timedelta(days=args.days).total_seconds()
    heavy = None
    for u in range(args.users + 1):
        user = User.objects.create_user(f"user{u}")
        count = args.conversations * (10 if u == 0 else 1)
        heavy = heavy or user.pk
        # Activity spread evenly back over the days: most conversations are old.
        ages = [timedelta(seconds=span * (i + 0.5) / count) for i in range(count)]
        conversations = Conversation.objects.bulk_create(
            Conversation(owner=user, model="local", updated=now - age) for age in ages)
        turns = []
        for conversation, age in zip(conversations, ages, strict=True):
            for t in range(args.turns):
                created = now - age - timedelta(minutes=args.turns - t)
                turns.append(Turn(conversation=conversation, client_id=str(t),
                                  status="completed", created=created,
                                  usage={"total_tokens": 100 + t}))
        Turn.objects.bulk_create(turns, batch_size=2000)
    return heavy


def timed(fn, repeat: int) -> float:
    fn()  # warm the connection and the caches
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with database(args.postgres) as url:
        os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="chatsite.settings",
                          DEBUG="1")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        run(args)


def run(args) -> None:
    from django.db import connection
    from django.db.models import Count, Q, Sum
    from django.utils import timezone

    from conversations import policies
    from conversations.models import Turn

    heavy = fill(args)
    connection.cursor().execute("ANALYZE")
    now = timezone.now()
    since = min(policies.day_start(now), now - policies.HOUR)
    unbounded = Turn.objects.filter(conversation__owner_id=heavy, created__gte=since)
    totals = {"tokens": Sum(policies._TOKENS, filter=policies._COUNTABLE),
              "messages": Count("pk", filter=Q(created__gte=now - policies.HOUR))}
    print(f"{connection.vendor}: {Turn.objects.count():,} turns; the heavy user has "
          f"{args.conversations * 10:,} conversations, {policies.usage_of(heavy)}")
    for label, fn in [
        ("effective_policy", lambda: policies.effective_policy(heavy)),
        ("usage_of (as shipped)", lambda: policies.usage_of(heavy, now=now)),
        ("usage without the updated bound", lambda: unbounded.aggregate(**totals)),
    ]:
        print(f"  {label:34} {timed(fn, args.repeat):7.2f} ms median")
    for label, queryset in [("as shipped", policies._recent_turns(heavy, since)),
                            ("without the updated bound", unbounded)]:
        print(f"  plan, {label}:")
        for line in queryset.explain().splitlines():
            print(f"    {line}")


if __name__ == "__main__":
    main()
