"""Token usage per user, model and day (the admin's usage page and its CSV), from a known
set of turns: several users, models and days, some turns without usage. Also on
PostgreSQL when it runs on 5432 (as tests/test_team.py finds it)."""

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
ZONE = "Asia/Tokyo"  # UTC+9: a turn's day there is often not its day in UTC
D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def make_turns() -> None:
    """The known turns (times in ZONE). Importable, so the PostgreSQL run builds the same."""
    from django.contrib.auth.models import User

    from conversations.models import Conversation, Turn

    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("@bob")  # a user name a spreadsheet would run as a formula

    def turn(owner, model, at, usage):
        chat = Conversation.objects.create(owner=owner, model=model)
        made = Turn.objects.create(conversation=chat, client_id=str(uuid.uuid4()), model=model,
                                   status="completed", usage=usage)
        when = datetime(*at, tzinfo=ZoneInfo(ZONE))
        Turn.objects.filter(pk=made.pk).update(created=when)

    full = {"total_input_tokens": 10, "total_output_tokens": 20, "total_thought_tokens": 5,
            "total_cached_tokens": 3, "total_tokens": 35,
            "input_tokens_by_modality": [{"modality": "text", "tokens": 10}]}
    turn(alice, "gemini-3.5-flash", (2026, 3, 1, 1, 0), full)       # 2026-02-28 in UTC
    turn(alice, "gemini-3.5-flash", (2026, 3, 1, 23, 30),
         {"total_input_tokens": 1, "total_output_tokens": 2, "total_tokens": 3})
    turn(alice, "local", (2026, 3, 1, 12, 0),
         {"total_input_tokens": 7, "total_output_tokens": 8, "total_tokens": 15})
    turn(alice, "gemini-3.5-flash", (2026, 3, 2, 0, 30),             # 2026-03-01 in UTC
         {"total_input_tokens": 100, "total_output_tokens": 200, "total_thought_tokens": 50,
          "total_cached_tokens": 0, "total_tokens": 350})
    turn(bob, "gemini-3-flash-preview", (2026, 3, 2, 9, 0),
         {"total_input_tokens": 4, "total_output_tokens": 4, "total_tokens": 8})
    turn(bob, "gemini-3-flash-preview", (2026, 3, 2, 10, 0), None)   # failed before a token
    turn(bob, "local", (2026, 3, 2, 11, 0), None)
    turn(alice, "local", (2026, 2, 28, 23, 59), {"total_tokens": 1000})  # the day before
    turn(bob, "local", (2026, 3, 3, 0, 0), {"total_tokens": 1000})       # the day after


# day, user, model, turns, input, output, thoughts, cached, total
EXPECTED = [
    ["2026-03-01", "alice", "gemini-3.5-flash", 2, 11, 22, 5, 3, 38],
    ["2026-03-01", "alice", "local", 1, 7, 8, 0, 0, 15],
    ["2026-03-02", "@bob", "gemini-3-flash-preview", 1, 4, 4, 0, 0, 8],
    ["2026-03-02", "alice", "gemini-3.5-flash", 1, 100, 200, 50, 0, 350],
]
COLUMNS = ["day", "user", "model", "turns", "input", "output", "thoughts", "cached", "total"]


def as_lists(rows) -> list[list]:
    return [[str(row["day"]), *(row[c] for c in COLUMNS[1:])] for row in rows]


@pytest.fixture
def turns(db, settings):
    settings.TIME_ZONE = ZONE
    make_turns()


@pytest.fixture
def reviewer(django_user_model):
    user = django_user_model.objects.create_user("rita", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="review_conversation"))
    client = Client()
    client.force_login(user)
    return client


def test_it_sums_tokens_per_day_user_and_model_in_the_sites_time_zone(turns):
    from conversations.usage import usage_rows

    assert as_lists(usage_rows(start=D1, end=D2)) == EXPECTED


def delete_alices_conversations() -> None:
    from conversations import services
    from conversations.models import Conversation

    for conversation in Conversation.objects.filter(owner__username="alice"):
        services.conversation_delete(conversation=conversation)


def test_deleted_conversations_still_count(turns):
    from conversations.models import Turn
    from conversations.usage import usage_rows

    delete_alices_conversations()
    assert not Turn.objects.filter(conversation__owner__username="alice").exists()
    assert as_lists(usage_rows(start=D1, end=D2)) == EXPECTED


def test_it_totals_per_user_and_per_model(turns):
    from conversations.usage import totals_by, usage_rows

    rows = usage_rows(start=D1, end=D2)
    users = {t["user"]: (t["turns"], t["total"]) for t in totals_by(rows, "user")}
    assert users == {"alice": (4, 403), "@bob": (1, 8)}
    models = {t["model"]: (t["input"], t["thoughts"]) for t in totals_by(rows, "model")}
    assert models == {"gemini-3.5-flash": (111, 55), "local": (7, 0),
                      "gemini-3-flash-preview": (4, 0)}


def test_the_page_shows_the_figures_and_a_bar_per_day(turns, reviewer):
    response = reviewer.get("/admin/usage/?start=2026-03-01&end=2026-03-02")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="usage-bar"') == 2
    assert "2026-03-02: 104 input, 204 output, 50 thoughts, 358 total" in page
    for cells in (["alice", 4, 118, 230, 55, 3, 403], ["@bob", 1, 4, 4, 0, 0, 8]):
        assert "".join(f'<td class="num">{n}</td>' if isinstance(n, int) else f"<td>{n}</td>"
                       for n in cells) in page
    assert 'value="2026-03-01"' in page and 'value="2026-03-02"' in page


def test_the_bars_are_scaled_to_the_busiest_day(turns):
    from conversations.usage import CHART_HEIGHT, chart, usage_rows

    bars = chart(usage_rows(start=D1, end=D2), start=D1, end=D2)["bars"]
    heights = [sum(s["height"] for s in bar["segments"]) for bar in bars]
    assert heights[1] == pytest.approx(CHART_HEIGHT, abs=0.05)  # 104 + 204 + 50 = 358
    assert heights[0] == pytest.approx(CHART_HEIGHT * (18 + 30 + 5) / 358, abs=0.05)


def test_the_csv_has_the_same_rows(turns, reviewer):
    response = reviewer.get("/admin/usage/?start=2026-03-01&end=2026-03-02&format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="usage-2026-03-01-2026-03-02.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["day", "user", "model", "turns", "input_tokens", "output_tokens",
                       "thoughts_tokens", "cached_tokens", "total_tokens"]
    expected = [[str(c) for c in row] for row in EXPECTED]
    expected[2][1] = "'@bob"  # kept from being read as a formula
    assert rows[1:] == expected


def test_it_defaults_to_the_last_30_days(alice, reviewer):
    from django.utils import timezone

    from conversations.models import Conversation, Turn

    chat = Conversation.objects.create(owner=alice, model="local")
    for n, days_ago in enumerate((0, 29, 30)):
        made = Turn.objects.create(conversation=chat, client_id=str(n), model="local",
                                   usage={"total_tokens": 10 ** n})
        Turn.objects.filter(pk=made.pk).update(created=timezone.now() - timedelta(days=days_ago))
    rows = list(csv.reader(io.StringIO(reviewer.get("/admin/usage/?format=csv").content.decode())))
    assert sum(int(row[-1]) for row in rows[1:]) == 1 + 10  # 30 days ago is the 31st day


@pytest.mark.parametrize(("query", "message"), [
    ("start=yesterday", "Start: Enter a valid date."),
    ("start=2026-03-05&end=2026-03-01", "The start date is after the end date."),
    ("start=2024-01-01&end=2026-01-01", "At most 366 days at once (USAGE_MAX_DAYS)"),
])
def test_bad_dates_get_a_clear_message_and_keep_what_was_typed(db, reviewer, query, message):
    page = reviewer.get(f"/admin/usage/?{query}").content.decode()
    assert message in page
    from django.utils import timezone

    today = timezone.localdate()
    assert f"Showing {today - timedelta(days=29)} to {today} instead." in page
    typed = dict(part.split("=") for part in query.split("&"))
    assert f'value="{typed["start"]}"' in page
    response = reviewer.get(f"/admin/usage/?{query}&format=csv")
    assert response.status_code == 400
    assert message.split(": ")[-1] in response.content.decode()


def test_the_longest_range_is_a_setting(db, reviewer, settings):
    settings.USAGE_MAX_DAYS = 7
    page = reviewer.get("/admin/usage/?start=2026-03-01&end=2026-03-08").content.decode()
    assert "At most 7 days at once" in page
    assert reviewer.get("/admin/usage/?start=2026-03-01&end=2026-03-07&format=csv"
                        ).status_code == 200


def test_only_reviewers_and_superusers_see_usage(db, django_user_model, admin_client, client):
    staff = django_user_model.objects.create_user("sam", password="pw", is_staff=True)
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get("/admin/usage/").status_code == 403
    assert "/admin/usage/" not in staff_client.get("/admin/").content.decode()
    assert client.get("/admin/usage/")["Location"].startswith("/admin/login/")
    assert admin_client.get("/admin/usage/").status_code == 200
    assert 'href="/admin/usage/"' in admin_client.get("/admin/").content.decode()


# --- the same on PostgreSQL ---------------------------------------------------------------

POSTGRES = os.getenv("TEAM_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PG_SCRIPT = """
import json
from datetime import date
from tests.test_usage import as_lists, make_turns
from conversations.usage import usage_rows
make_turns()
# The admin's list sums the same usage per conversation.
from django.contrib import admin
from django.test import RequestFactory
from conversations.models import Conversation
listed = admin.site._registry[Conversation].get_queryset(RequestFactory().get("/"))
tokens = sorted((c.tokens or 0, c.turn_count, c.last_status) for c in listed)
rows = as_lists(usage_rows(start=date(2026, 3, 1), end=date(2026, 3, 2)))
from tests.test_usage import delete_alices_conversations
delete_alices_conversations()
kept = as_lists(usage_rows(start=date(2026, 3, 1), end=date(2026, 3, 2)))
print(json.dumps([rows, tokens, kept]))
"""


def test_postgresql_sums_the_same():
    from devtools.team import POSTGRES, reachable, team_database

    if not reachable(POSTGRES):
        pytest.skip("needs PostgreSQL on 5432")
    with team_database() as database:
        env = dict(os.environ, DATABASE_URL=database, TIME_ZONE=ZONE)
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True,
                       cwd=ROOT)
        out = subprocess.run([*manage, "shell", "-c", PG_SCRIPT], env=env, check=True,
                             cwd=ROOT, capture_output=True, text=True).stdout
    rows, listed, kept = json.loads(out.strip().splitlines()[-1])
    assert rows == kept == EXPECTED
    assert listed == [[0, 1, "completed"], [0, 1, "completed"], [3, 1, "completed"],
                      [8, 1, "completed"], [15, 1, "completed"], [35, 1, "completed"],
                      [350, 1, "completed"], [1000, 1, "completed"], [1000, 1, "completed"]]
