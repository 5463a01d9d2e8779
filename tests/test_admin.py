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
