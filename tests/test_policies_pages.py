"""Access policies on the pages: the model picker offers only allowed models, saving
another is refused, and the admin edits policies and shows a user's."""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from conversations import services
from conversations.models import AccessPolicy, Conversation, Turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def gemini_key(settings):
    settings.GEMINI_API_KEY = "key"


@pytest.fixture
def offline_only(alice):
    policy = AccessPolicy.objects.create(name="offline only", allowed_models=["local"])
    policy.users.add(alice)
    return policy


def picker(html: str) -> list[str]:
    select = re.search(r'<select name="model".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([^"]*)"', select)


def test_the_picker_offers_only_the_models_the_policy_allows(alice_client, alice, gemini_key,
                                                             offline_only):
    chat = services.conversation_create(owner=alice, model="local")
    html = alice_client.get(f"/c/{chat.pk}/").content.decode()
    assert picker(html) == ["local"]


def test_without_a_policy_the_picker_offers_every_model(alice_client, alice, gemini_key):
    chat = services.conversation_create(owner=alice, model="local")
    html = alice_client.get(f"/c/{chat.pk}/").content.decode()
    assert picker(html) == ["local", "gemini-3.5-flash", "gemini-3-flash-preview",
                            "gemini-3.1-flash-image"]


def test_a_conversation_on_a_model_no_longer_allowed_says_so(alice_client, alice, gemini_key,
                                                            offline_only):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    html = alice_client.get(f"/c/{chat.pk}/").content.decode()
    assert picker(html) == ["local", "gemini-3.5-flash"]
    assert "Gemini 3.5 Flash (not allowed for your account)" in html


def save(client, chat, model: str):
    return client.post(f"/c/{chat.pk}/settings", {"model": model, "stateful": "on"},
                       headers={"accept": "application/json"})


def test_saving_a_model_the_policy_refuses_is_refused(alice_client, alice, gemini_key,
                                                      offline_only):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    response = save(alice_client, chat, "gemini-3-flash-preview")  # not even in the picker
    assert response.status_code == 400 and "model" in response.json()["errors"]
    response = save(alice_client, chat, "gemini-3.5-flash")  # the one it is on, still listed
    assert response.status_code == 400
    assert response.json()["errors"]["model"] == [
        "Your account may not use Gemini 3.5 Flash: choose another model."]
    assert save(alice_client, chat, "local").status_code == 200
    chat.refresh_from_db()
    assert chat.model == "local"


def test_a_new_chat_starts_on_a_model_the_user_may_use(alice_client, alice, gemini_key,
                                                       offline_only):
    alice_client.post("/c/new")
    assert Conversation.objects.get(owner=alice).model == "local"  # not the Gemini default


# -- the admin ----------------------------------------------------------------------------

@pytest.fixture
def root(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw"))
    return client


def test_a_superuser_creates_a_policy_for_a_group(root, alice):
    staff = Group.objects.create(name="staff")
    alice.groups.add(staff)
    response = root.post("/admin/conversations/accesspolicy/add/", {
        "name": "staff", "groups": [staff.pk], "daily_tokens": "200000",
        "messages_per_hour": "", "allowed_models": ["local", "gemini-3.5-flash"],
        "allowed_tools": "google_search, url_context, google_search"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    policy = AccessPolicy.objects.get(name="staff")
    assert (policy.daily_tokens, policy.messages_per_hour) == (200_000, None)
    assert policy.allowed_models == ["local", "gemini-3.5-flash"]
    assert policy.allowed_tools == ["google_search", "url_context"]
    listing = root.get("/admin/conversations/accesspolicy/").content.decode()
    assert "200,000" in listing and "no limit" in listing and "0 users, 1 groups" in listing


def test_a_tool_name_that_is_not_one_is_refused(root):
    response = root.post("/admin/conversations/accesspolicy/add/", {
        "name": "odd", "allowed_tools": "Google Search"})
    assert response.status_code == 200 and "Not a tool name: Google Search" in \
        response.content.decode()
    assert not AccessPolicy.objects.exists()


def test_a_policy_keeps_a_model_id_the_catalogue_no_longer_offers(root):
    policy = AccessPolicy.objects.create(name="old", allowed_models=["gemini-2-retired"])
    html = root.get(f"/admin/conversations/accesspolicy/{policy.pk}/change/").content.decode()
    assert re.search(r'value="gemini-2-retired"[^>]*checked', html)


def test_the_user_page_shows_the_effective_policy_and_todays_usage(root, alice, offline_only,
                                                                   conversation):
    Turn.objects.create(conversation=conversation, client_id="x", usage={"total_tokens": 1234})
    html = root.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "offline only: no limit, no limit; models: local; tools: all" in html
    assert "1,234 tokens today" in html and "1 messages in the last hour" in html


@pytest.mark.parametrize("page", ["/admin/auth/user/", "/admin/auth/user/add/",
                                  "/admin/auth/group/", "/admin/auth/group/add/",
                                  "/admin/conversations/accesspolicy/add/"])
def test_users_groups_and_policies_open_for_a_superuser(root, page):
    assert root.get(page).status_code == 200
