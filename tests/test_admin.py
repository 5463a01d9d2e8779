import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from conversations import services


@pytest.fixture
def turn(conversation):
    turn, _ = services.turn_create(
        conversation=conversation, client_id="c1",
        input=[{"type": "text", "text": "What is 2+2?"}], parent=None,
    )
    steps = [{"type": "model_output", "content": [{"type": "text", "text": "It is four."}]}]
    services.turn_finish(turn_id=turn.pk, status="completed", steps=steps, seq=2,
                         usage={"total_tokens": 11})
    return turn


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(bob):
    bob.is_staff = True
    bob.save()
    return bob


@pytest.fixture
def reviewer(staff):
    staff.user_permissions.add(Permission.objects.get(codename="review_conversation"))
    return staff


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "", "pw")


PAGES = [
    "/admin/conversations/conversation/",
    "/admin/conversations/conversation/{conversation}/change/",
    "/admin/conversations/turn/",
    "/admin/conversations/turn/{turn}/change/",
]


def urls(conversation, turn):
    return [p.format(conversation=conversation.pk, turn=turn.pk) for p in PAGES]


@pytest.mark.parametrize("user", ["reviewer", "superuser"])
def test_it_shows_conversations_to_reviewers(request, user, conversation, turn):
    client = client_for(request.getfixturevalue(user))
    for url in urls(conversation, turn):
        assert client.get(url).status_code == 200, url


def test_it_forbids_staff_without_the_review_permission(staff, conversation, turn):
    client = client_for(staff)
    for url in urls(conversation, turn):
        assert client.get(url).status_code == 403, url


def test_it_sends_regular_users_to_the_admin_login(alice_client, conversation, turn):
    for url in urls(conversation, turn):
        response = alice_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_it_shows_input_reply_and_usage(reviewer, turn):
    response = client_for(reviewer).get(f"/admin/conversations/turn/{turn.pk}/change/")
    for expected in ("What is 2+2?", "It is four.", "total_tokens"):
        assert expected in response.content.decode()


def test_it_searches_by_owner(reviewer, conversation, turn):
    response = client_for(reviewer).get("/admin/conversations/conversation/?q=alice")
    assert "What is 2+2?" in response.content.decode()
    response = client_for(reviewer).get("/admin/conversations/conversation/?q=nobody")
    assert "What is 2+2?" not in response.content.decode()


@pytest.mark.parametrize("user", ["reviewer", "superuser"])
def test_it_is_read_only(request, user, conversation, turn):
    client = client_for(request.getfixturevalue(user))
    assert client.get("/admin/conversations/turn/add/").status_code == 403
    assert client.get("/admin/conversations/conversation/add/").status_code == 403
    response = client.post(
        f"/admin/conversations/conversation/{conversation.pk}/change/", {"title": "Hacked"}
    )
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.title == "What is 2+2?"


# --- the conversation list -----------------------------------------------------------------

def finished(conversation, client_id, parent=None, *, status="completed", usage=None,
             text="A question"):
    turn, _ = services.turn_create(conversation=conversation, client_id=client_id,
                                   input=[{"type": "text", "text": text}], parent=parent)
    services.turn_finish(turn_id=turn.pk, status=status, seq=1, usage=usage,
                         steps=[{"type": "model_output",
                                 "content": [{"type": "text", "text": f"reply to {text}"}]}])
    turn.refresh_from_db()
    return turn


def listed(client, query: str = "") -> dict:
    """The list's rows by title: {title: [owner, model, turns, tokens, updated, status,
    review]}."""
    import re

    page = client.get(f"/admin/conversations/conversation/{query}").content.decode()
    rows = [re.sub(r'<td class="action-checkbox">.*?</td>', "", row, flags=re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)]  # the export actions' boxes
    table = {}
    for row in rows:
        cells = [re.sub(r"<[^>]+>", "", c).strip()
                 for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        if len(cells) == 8 and row.count("<td") == 7:  # a conversation's row (not headers)
            assert cells[0] not in table, f"{cells[0]} is listed twice"
            table[cells[0]] = cells[1:]
    return table


@pytest.fixture
def three(alice, bob):
    """ok (two turns, 30 tokens), failed last turn, running."""
    ok = services.conversation_create(owner=alice, model="gemini-3.5-flash", title="ok chat")
    first = finished(ok, "a", usage={"total_tokens": 10})
    finished(ok, "b", first, usage={"total_tokens": 20})
    failed = services.conversation_create(owner=bob, model="local", title="failed chat")
    finished(failed, "c", usage=None, status="failed", text="needle in the text")
    running = services.conversation_create(owner=alice, model="local", title="running chat")
    services.turn_create(conversation=running, client_id="d", parent=None,
                         input=[{"type": "text", "text": "still going"}])
    services.conversation_create(owner=alice, model="local", title="empty chat")
    return ok, failed, running


def test_the_list_shows_owner_model_turns_tokens_and_status(reviewer, three):
    table = listed(client_for(reviewer))
    assert table["ok chat"][:4] == ["alice", "gemini-3.5-flash", "2", "30"]
    assert table["ok chat"][5:] == ["ok", "Review"]
    assert table["failed chat"][:4] == ["bob", "local", "1", "0"]
    assert table["failed chat"][5] == "last turn failed"
    assert table["running chat"][5] == "running"
    assert table["empty chat"][2:4] == ["0", "0"]
    assert table["empty chat"][5] == "no turns"


@pytest.mark.parametrize(("query", "titles"), [
    ("?status=running", {"running chat"}),
    ("?status=failed", {"failed chat"}),
    ("?status=ok", {"ok chat"}),
    ("?status=empty", {"empty chat"}),
    ("?model=local", {"failed chat", "running chat", "empty chat"}),
    ("?q=needle", {"failed chat"}),             # a message's text
    ("?q=reply+to+A+question", {"ok chat"}),   # a reply's text, once per conversation
    ("?q=bob", {"failed chat"}),                # an owner
    ("?q=running", {"running chat"}),           # a title
])
def test_the_list_filters_and_searches(reviewer, three, query, titles):
    assert set(listed(client_for(reviewer), query)) == titles


def test_the_list_filters_by_owner_and_date(reviewer, three, bob):
    assert set(listed(client_for(reviewer), f"?owner__id__exact={bob.pk}")) == {"failed chat"}
    from django.utils import timezone

    today = timezone.localdate()
    query = f"?updated__year={today.year}&updated__month={today.month}&updated__day={today.day}"
    assert len(listed(client_for(reviewer), query)) == 4
    assert listed(client_for(reviewer), "?updated__year=2001") == {}


def test_the_list_links_each_conversation_to_its_review(reviewer, conversation, turn):
    page = client_for(reviewer).get("/admin/conversations/conversation/").content.decode()
    assert f"/admin/conversations/conversation/{conversation.pk}/review/" in page
    page = client_for(reviewer).get(
        f"/admin/conversations/conversation/{conversation.pk}/change/").content.decode()
    assert f'href="/admin/conversations/conversation/{conversation.pk}/review/"' in page


# --- the review log ----------------------------------------------------------------------------

def test_opening_a_conversations_admin_page_is_logged(reviewer, conversation, turn):
    from conversations.models import ReviewLog

    client = client_for(reviewer)
    client.get("/admin/conversations/conversation/")  # a list of titles is not a review
    assert ReviewLog.objects.count() == 0
    client.get(f"/admin/conversations/conversation/{conversation.pk}/change/")
    client.get(f"/admin/conversations/turn/{turn.pk}/change/")
    assert list(ReviewLog.objects.values_list("reviewer_name", "conversation_id")) == [
        ("bob", conversation.pk), ("bob", conversation.pk)]


@pytest.fixture
def entry(reviewer, conversation, turn):
    client_for(reviewer).get(f"/admin/conversations/conversation/{conversation.pk}/review/")
    from conversations.models import ReviewLog

    return ReviewLog.objects.get()


LOG = "/admin/conversations/reviewlog/"


def test_only_superusers_read_the_log(reviewer, superuser, entry):
    assert client_for(reviewer).get(LOG).status_code == 403
    assert client_for(reviewer).get(f"{LOG}{entry.pk}/change/").status_code == 403
    assert "Review logs" not in client_for(reviewer).get("/admin/").content.decode()
    client = client_for(superuser)
    page = client.get(LOG).content.decode()
    assert "bob" in page and "alice" in page and "What is 2+2?" in page
    assert client.get(f"{LOG}{entry.pk}/change/").status_code == 200


def test_nobody_changes_or_deletes_the_log_through_the_admin(superuser, entry):
    from conversations.models import ReviewLog

    client = client_for(superuser)
    assert client.get(f"{LOG}add/").status_code == 403
    assert client.post(f"{LOG}add/", {"reviewer_name": "x"}).status_code == 403
    assert client.post(f"{LOG}{entry.pk}/change/",
                       {"reviewer_name": "someone else"}).status_code == 403
    assert client.post(f"{LOG}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(LOG, {"action": "delete_selected", "_selected_action": [entry.pk],
                      "post": "yes"})
    page = client.get(LOG).content.decode()
    assert 'name="action"' not in page  # no actions at all
    assert list(ReviewLog.objects.values_list("pk", "reviewer_name")) == [(entry.pk, "bob")]


def test_the_log_filters_by_reviewer_and_date(superuser, entry, reviewer):
    client = client_for(superuser)

    def shows_entry(query: str) -> bool:
        return "What is 2+2?" in client.get(f"{LOG}{query}").content.decode()

    assert shows_entry(f"?reviewer__id__exact={reviewer.pk}")
    assert not shows_entry(f"?reviewer__id__exact={superuser.pk}")
    assert shows_entry(f"?at__year={entry.at.year}")
    assert not shows_entry("?at__year=2001")


def test_the_log_outlives_the_conversation(superuser, entry, conversation):
    conversation.delete()
    entry.refresh_from_db()
    assert entry.conversation_title == "What is 2+2?"
