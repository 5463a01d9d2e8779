"""Access policies: which one applies to a user, what they used today, and each refusal a
new turn meets (through a real websocket, against the fake upstream)."""

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from conversations import policies, services
from conversations.models import AccessPolicy, Turn
from tests.streaming import frames_until_done, send, socket


def make_policy(name: str, *, users=(), groups=(), **fields) -> AccessPolicy:
    policy = AccessPolicy.objects.create(name=name, **fields)
    policy.users.set(users)
    policy.groups.set(groups)
    return policy


def member_of(user, *names: str) -> list[Group]:
    groups = [Group.objects.get_or_create(name=name)[0] for name in names]
    user.groups.add(*groups)
    return groups


def turn_at(conversation, created: datetime, usage=None, client_id=None) -> Turn:
    """A finished turn sent at `created` (its conversation updated then, as turn_create
    leaves it)."""
    turn = Turn.objects.create(conversation=conversation, client_id=client_id or str(uuid.uuid4()),
                               status="completed", usage=usage)
    Turn.objects.filter(pk=turn.pk).update(created=created)
    type(conversation).objects.filter(pk=conversation.pk).update(
        updated=max(created, conversation.updated))
    return turn


# -- which policy applies -----------------------------------------------------------------

@pytest.mark.django_db
def test_without_a_policy_the_site_defaults_apply(alice, settings):
    settings.DEFAULT_DAILY_TOKENS, settings.DEFAULT_MESSAGES_PER_HOUR = 50_000, 0
    policy = policies.effective_policy(alice.pk)
    assert (policy.daily_tokens, policy.messages_per_hour) == (50_000, None)  # 0: no limit
    assert policy.models is None and policy.tools is None and policy.names == ()


@pytest.mark.django_db
def test_a_users_own_policy_wins_over_their_groups(alice):
    staff, = member_of(alice, "staff")
    make_policy("generous group", groups=[staff], daily_tokens=None, allowed_models=[])
    make_policy("alice", users=[alice], daily_tokens=1000, allowed_models=["local"])
    policy = policies.effective_policy(alice.pk)
    assert policy.names == ("alice",)
    assert policy.daily_tokens == 1000 and policy.models == {"local"}


@pytest.mark.django_db
def test_of_several_groups_the_most_generous_wins(alice):
    one, two, three = member_of(alice, "one", "two", "three")
    make_policy("small", groups=[one], daily_tokens=1000, messages_per_hour=10,
                allowed_models=["local"], allowed_tools=["google_search"])
    make_policy("bigger", groups=[two], daily_tokens=5000, messages_per_hour=None,
                allowed_models=["gemini-3.5-flash"], allowed_tools=["url_context"])
    make_policy("models only", groups=[three], daily_tokens=2000, messages_per_hour=20,
                allowed_models=["gemini-3-flash-preview"], allowed_tools=[])
    policy = policies.effective_policy(alice.pk)
    assert policy.daily_tokens == 5000  # the largest number
    assert policy.messages_per_hour is None  # no limit beats any limit
    assert policy.models == {"local", "gemini-3.5-flash", "gemini-3-flash-preview"}
    assert policy.tools is None  # an empty list (every tool) beats any list
    assert policy.names == ("bigger", "models only", "small")


@pytest.mark.django_db
def test_policies_of_other_users_and_groups_do_not_apply(alice, bob, settings):
    settings.DEFAULT_DAILY_TOKENS = 10
    member_of(alice, "alices")
    others, = member_of(bob, "bobs")
    make_policy("bob", users=[bob], daily_tokens=1)
    make_policy("bobs", groups=[others], daily_tokens=2)
    assert policies.effective_policy(alice.pk).daily_tokens == 10
    assert policies.effective_policy(bob.pk).daily_tokens == 1


@pytest.mark.django_db
def test_the_policy_takes_one_query_and_a_request_asks_once(alice, django_assert_num_queries):
    groups = member_of(alice, "a", "b")
    make_policy("a", groups=groups, daily_tokens=3)
    make_policy("mine", users=[alice], daily_tokens=4)
    with django_assert_num_queries(1):
        assert policies.effective_policy(alice.pk).daily_tokens == 4
    with django_assert_num_queries(1):
        first = policies.policy_for(alice)
        assert policies.policy_for(alice) is first


@pytest.mark.django_db
def test_allowed_tools_is_what_the_settings_dialog_offers(alice):
    make_policy("mine", users=[alice], allowed_tools=["url_context", "code_execution"])
    offered = ["google_search", "code_execution", "url_context"]
    assert policies.allowed_tools(alice, offered) == ["code_execution", "url_context"]


# -- what was used ------------------------------------------------------------------------

NOW = datetime(2025, 3, 10, 4, 30, tzinfo=UTC)  # 00:30 in New York (EDT since 9 March)


@pytest.mark.django_db
@pytest.mark.parametrize(("zone", "counted"), [("UTC", 40 + 2), ("America/New_York", 2)])
def test_tokens_count_from_local_midnight(alice, conversation, settings, zone, counted):
    settings.TIME_ZONE = zone
    turn_at(conversation, NOW - timedelta(hours=5), {"total_tokens": 1000})  # yesterday both
    turn_at(conversation, NOW - timedelta(hours=1, minutes=30), {"total_tokens": 40})
    turn_at(conversation, NOW - timedelta(minutes=20), {"total_tokens": 2})
    assert policies.usage_of(alice.pk, now=NOW).tokens_today == counted


@pytest.mark.django_db
def test_a_new_day_starts_from_nothing(alice, conversation):
    turn_at(conversation, NOW - timedelta(minutes=1), {"total_tokens": 500})
    tomorrow = NOW.replace(hour=0) + timedelta(days=1)
    assert policies.usage_of(alice.pk, now=tomorrow).tokens_today == 0
    assert policies.usage_of(alice.pk, now=NOW).tokens_today == 500


@pytest.mark.django_db
def test_only_the_users_own_countable_tokens_count(alice, bob, conversation):
    theirs = services.conversation_create(owner=bob, model="local")
    turn_at(theirs, NOW, {"total_tokens": 10_000})
    for usage in ({"total_tokens": 7}, {"total_tokens": "30"},  # an int64 as a JSON string
                  {"total_tokens": 1.5}, {"total_tokens": "lots"}, {"total_input_tokens": 9},
                  None):
        turn_at(conversation, NOW, usage)
    assert policies.usage_of(alice.pk, now=NOW).tokens_today == 37


@pytest.mark.django_db
def test_messages_count_over_the_last_sixty_minutes(alice, conversation,
                                                    django_assert_num_queries):
    for minutes in (61, 59, 30, 1):
        turn_at(conversation, NOW - timedelta(minutes=minutes), {"total_tokens": 1})
    with django_assert_num_queries(2):  # the turns, and what deleted ones had spent
        usage = policies.usage_of(alice.pk, now=NOW)
    assert usage == policies.Usage(tokens_today=4, messages_last_hour=3)


@pytest.mark.django_db
def test_deleting_a_conversation_gives_back_neither_tokens_nor_messages(alice, conversation):
    make_policy("mine", users=[alice], messages_per_hour=3, daily_tokens=1000)
    now = NOW + timedelta(hours=10)  # midday: the turns below are all today's
    for minutes, usage in ((50, {"total_tokens": 600}), (20, None), (5, {"total_tokens": 500})):
        turn_at(conversation, now - timedelta(minutes=minutes), usage)
    before = policies.usage_of(alice.pk, now=now)
    assert before == policies.Usage(tokens_today=1100, messages_last_hour=3)
    assert refusal(alice, now).code == "quota_exceeded"

    services.conversation_delete(conversation=conversation, now=now)

    assert not Turn.objects.exists()
    assert policies.usage_of(alice.pk, now=now) == before
    assert refusal(alice, now).code == "quota_exceeded"
    AccessPolicy.objects.filter(name="mine").update(daily_tokens=None)
    error = refusal(alice, now)  # the hour's messages still count, and still age out
    assert error.code == "rate_limited_messages" and error.params["retry_after"] == 10 * 60
    # The next day (and so the next hour) starts from nothing.
    assert policies.usage_of(alice.pk, now=now + timedelta(days=1)) == policies.Usage(0, 0)


@pytest.mark.django_db
def test_a_reply_that_ends_after_its_conversation_was_deleted_still_counts(alice,
                                                                          conversation):
    turn, _ = services.turn_create(conversation=conversation, client_id="c", parent=None,
                                   input=[{"type": "text", "text": "a long answer, please"}])
    services.conversation_delete(conversation=conversation)  # while it runs
    services.turn_finish(turn_id=turn.pk, status="completed", steps=[], seq=1,
                         usage={"total_tokens": 70})
    assert policies.usage_of(alice.pk) == policies.Usage(tokens_today=70,
                                                        messages_last_hour=1)


# -- refusals, with their messages --------------------------------------------------------

def refusal(alice, now, model="local", tools=()) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        policies.check_turn(user_id=alice.pk, model=model, tools=list(tools), now=now)
    return caught.value.error_list[0]


@pytest.mark.django_db
def test_the_quota_says_when_it_resets_across_a_dst_change(alice, conversation, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    now = datetime(2025, 3, 29, 23, 30, tzinfo=UTC)  # 00:30 CET; clocks go forward at 02:00
    make_policy("mine", users=[alice], daily_tokens=200_000)
    turn_at(conversation, now - timedelta(minutes=10), {"total_tokens": 200_500})
    error = refusal(alice, now)
    assert error.code == "quota_exceeded"
    # Midnight is 22 h 30 min away, not the 23 h 30 min the local clock faces suggest.
    assert error.message == ("You have used your 200,000 tokens for today; the quota resets "
                             "at midnight (in 22 h 30 min).")
    assert error.params["retry_after"] == 22 * 3600 + 30 * 60


@pytest.mark.django_db
def test_the_message_rate_says_when_a_message_may_go(alice, conversation):
    make_policy("mine", users=[alice], messages_per_hour=3)
    for minutes in (56, 50, 20, 1):  # 4 in the hour (the limit was lowered): 2 must age out
        turn_at(conversation, NOW - timedelta(minutes=minutes))
    error = refusal(alice, NOW)
    assert error.code == "rate_limited_messages"
    assert error.message == ("You have sent 4 messages in the last hour, and your account "
                             "may send 3 an hour: try again in 10 min.")
    assert error.params["retry_after"] == 600


@pytest.mark.django_db
def test_under_the_limits_a_turn_may_start(alice, conversation):
    make_policy("mine", users=[alice], messages_per_hour=2, daily_tokens=100)
    turn_at(conversation, NOW - timedelta(minutes=5), {"total_tokens": 99})
    policies.check_turn(user_id=alice.pk, model="local", tools=[], now=NOW)


@pytest.mark.django_db
def test_a_limit_of_zero_blocks_and_says_whom_to_ask(alice):
    make_policy("none", users=[alice], daily_tokens=0)
    error = refusal(alice, NOW)
    assert error.code == "quota_exceeded" and "Ask an administrator" in error.message


@pytest.mark.django_db
def test_a_model_outside_the_policy_is_refused_naming_the_allowed(alice, settings):
    settings.GEMINI_API_KEY = "key"
    make_policy("mine", users=[alice], allowed_models=["local", "gemini-3-flash-preview"])
    error = refusal(alice, NOW, model="gemini-3.5-flash")
    assert error.code == "model_not_allowed"
    assert error.message.startswith("Your account may not use Gemini 3.5 Flash. Choose one")
    assert "Gemini 3 Flash (preview)" in error.message and "(offline)" in error.message


@pytest.mark.django_db
def test_tools_outside_the_policy_are_refused_by_name(alice):
    make_policy("mine", users=[alice], allowed_tools=["url_context"])
    error = refusal(alice, NOW, tools=["google_search", "url_context", "code_execution"])
    assert error.code == "tools_not_allowed"
    assert error.message == ("Your account may not use the tools “google search”, “code "
                             "execution”. Switch them off in the conversation settings, then "
                             "send again.")


@pytest.mark.parametrize(("seconds", "said"), [(0.2, "1 s"), (59, "59 s"), (61, "2 min"),
                                               (3600, "1 h"), (5 * 3600 + 719, "5 h 12 min")])
def test_waits_are_said_rounded_up(seconds, said):
    assert policies.duration(seconds) == said


# -- through the websocket ----------------------------------------------------------------

@pytest.fixture
def chat(alice):
    return services.conversation_create(owner=alice, model="gemini-3.5-flash")


def creates(upstream) -> list:
    return upstream.find_requests("POST", r"/interactions$")


async def refused(ws, **frame) -> dict:
    client_id = str(uuid.uuid4())
    await send(ws, type=frame.pop("type", "send"), client_id=client_id, **frame)
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["client_id"] == client_id, error
    return error


SEND = {"text": "one more", "parent_id": None}


@pytest.mark.django_db(transaction=True)
async def test_over_the_quota_a_send_and_a_regenerate_are_refused(alice, chat, gemini):
    await sync_to_async(make_policy)("mine", users=[alice], daily_tokens=100)
    spent = await sync_to_async(turn_at)(chat, timezone.now(), {"total_tokens": 150})
    async with socket(alice, chat) as ws:
        sent = await refused(ws, **SEND)
        again = await refused(ws, type="regenerate", turn_id=str(spent.pk))
    for error in (sent, again):
        assert error["code"] == "quota_exceeded"
        assert re.fullmatch(r"You have used your 100 tokens for today; the quota resets at "
                            r"midnight \(in [0-9hmins ]+\)\.", error["message"])
        assert 0 < error["retry_after"] <= 24 * 3600
    assert await Turn.objects.acount() == 1 and creates(gemini) == []


@pytest.mark.django_db(transaction=True)
async def test_a_resend_of_a_message_already_taken_is_not_refused(alice, chat, gemini):
    """The turn exists: announcing it again loses nothing, whatever the quota says now."""
    await sync_to_async(make_policy)("mine", users=[alice], daily_tokens=100)
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id="once", **SEND)
        created = await ws.receive_json_from(timeout=5)
        done = await frames_until_done(ws)
        await sync_to_async(Turn.objects.update)(usage={"total_tokens": 500})
        await send(ws, type="send", client_id="once", **SEND)
        again = await ws.receive_json_from(timeout=5)
        over = await refused(ws, **SEND)
    assert done[-1]["status"] == "completed"
    assert again["type"] == "turn.created" and again["turn"]["id"] == created["turn"]["id"]
    assert over["code"] == "quota_exceeded"


@pytest.mark.django_db(transaction=True)
async def test_past_the_message_rate_a_send_is_refused(alice, chat, gemini):
    await sync_to_async(make_policy)("mine", users=[alice], messages_per_hour=1)
    await sync_to_async(turn_at)(chat, timezone.now() - timedelta(minutes=56))
    async with socket(alice, chat) as ws:
        error = await refused(ws, **SEND)
    assert error["code"] == "rate_limited_messages"
    assert "may send 1 an hour: try again in 4 min." in error["message"]
    assert 180 < error["retry_after"] <= 240
    assert await Turn.objects.acount() == 1 and creates(gemini) == []


@pytest.mark.django_db(transaction=True)
async def test_a_model_the_user_may_not_use_is_refused(alice, chat, gemini):
    await sync_to_async(make_policy)("offline only", users=[alice], allowed_models=["local"])
    async with socket(alice, chat) as ws:
        error = await refused(ws, **SEND)
    assert error["code"] == "model_not_allowed" and "retry_after" not in error
    assert error["message"].startswith("Your account may not use Gemini 3.5 Flash.")
    assert await Turn.objects.acount() == 0 and creates(gemini) == []


@pytest.mark.django_db(transaction=True)
async def test_a_tool_the_user_may_not_use_is_refused(alice, chat, gemini):
    await sync_to_async(make_policy)("no search", users=[alice], allowed_tools=["url_context"])
    chat.tools = ["google_search"]
    await chat.asave(update_fields=["tools"])
    async with socket(alice, chat) as ws:
        error = await refused(ws, **SEND)
    assert error["code"] == "tools_not_allowed" and "“google search”" in error["message"]
    assert await Turn.objects.acount() == 0 and creates(gemini) == []


@pytest.mark.django_db(transaction=True)
async def test_a_group_that_allows_it_lets_the_message_through(alice, chat, gemini):
    def setup():
        one, two = member_of(alice, "one", "two")
        make_policy("offline", groups=[one], allowed_models=["local"], daily_tokens=1)
        make_policy("gemini", groups=[two], allowed_models=["gemini-3.5-flash"],
                    daily_tokens=10_000)
        turn_at(chat, timezone.now(), {"total_tokens": 500})

    await sync_to_async(setup)()
    async with socket(alice, chat) as ws:
        await send(ws, type="send", client_id="through", **SEND)
        created = await ws.receive_json_from(timeout=5)
        done = await frames_until_done(ws)
    assert created["type"] == "turn.created" and done[-1]["status"] == "completed"
    assert len(creates(gemini)) == 1


def test_the_counting_runs_on_postgresql():
    """The JSON sums and casts of usage_of, and time zones, on the team's database."""
    from devtools.team import POSTGRES, ROOT, reachable, team_database

    if not reachable(POSTGRES):
        pytest.skip("needs PostgreSQL on 5432")
    if os.getenv("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("already running on PostgreSQL")
    with team_database() as database:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_policies.py", "-q", "-p", "no:randomly",
             "-p", "no:cacheprovider"], cwd=ROOT, env=dict(os.environ, DATABASE_URL=database),
            capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
