import json
import uuid

import pytest
from django.test import Client

from conversations import services
from conversations.models import GENERATION_SETTINGS, Conversation

JSON = {"HTTP_ACCEPT": "application/json"}


def chat_url(conversation: Conversation, action: str = "") -> str:
    return f"/c/{conversation.id}/{action}"


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def settings_data(**overrides) -> dict:
    data = {
        "model": "local",
        "system_instruction": "Be brief.",
        "temperature": "0.7",
        "thinking_level": "",
        "max_output_tokens": "512",
        "stateful": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- login required ---

ANONYMOUS_REQUESTS = [
    ("get", "/"),
    ("post", "/c/new"),
    ("get", "/c/search?q=x"),
    ("get", "{chat}"),
    ("post", "{chat}rename"),
    ("post", "{chat}delete"),
    ("post", "{chat}settings"),
]


@pytest.mark.parametrize(("method", "url"), ANONYMOUS_REQUESTS)
def test_it_requires_login(client, conversation, method, url):
    url = url.format(chat=chat_url(conversation))
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    assert Conversation.objects.filter(pk=conversation.pk).exists()


# --- ownership: bob gets 404 for alice's conversation ------------------------------------


@pytest.mark.parametrize(
    ("method", "action", "data"),
    [
        ("get", "", {}),
        ("post", "rename", {"title": "Mine now"}),
        ("post", "delete", {}),
        ("post", "settings", settings_data()),
    ],
)
def test_it_hides_other_peoples_conversations(bob_client, conversation, method, action, data):
    response = getattr(bob_client, method)(chat_url(conversation, action), data)
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == ""
    assert conversation.system_instruction == ""


def test_it_answers_404_for_an_unknown_conversation(alice_client):
    assert alice_client.get(f"/c/{uuid.uuid4()}/").status_code == 404


def test_it_does_not_list_other_peoples_conversations_in_the_sidebar(bob_client, conversation):
    services.conversation_rename(conversation=conversation, title="Alice's secret plans")
    response = bob_client.get("/")
    assert response.status_code == 200
    assert "Alice&#x27;s secret plans" not in response.content.decode()
    assert str(conversation.id) not in response.content.decode()


# --- index and new chat ---


def test_it_shows_the_new_chat_page_when_there_are_no_conversations(alice_client):
    response = alice_client.get("/")
    assert response.status_code == 200
    assert response.templates[0].name == "conversations/chat.html"
    assert response.context["conversation"] is None


def test_it_redirects_to_the_newest_conversation(alice, alice_client):
    services.conversation_create(owner=alice, model="local", title="old")
    newest = services.conversation_create(owner=alice, model="local", title="new")
    response = alice_client.get("/")
    assert response.status_code == 302
    assert response.url == chat_url(newest)


def test_it_creates_a_new_chat_and_redirects_to_it(alice, alice_client):
    response = alice_client.post("/c/new")
    conversation = Conversation.objects.get(owner=alice)
    assert response.status_code == 302
    assert response.url == chat_url(conversation)
    assert conversation.model == "local"


def test_it_creates_a_new_chat_for_fetch(alice, alice_client):
    response = alice_client.post("/c/new", **JSON)
    conversation = Conversation.objects.get(owner=alice)
    assert response.status_code == 201
    body = response.json()
    assert body["conversation"]["id"] == str(conversation.id)
    assert body["ws_url"] == f"/ws/conversations/{conversation.id}/"
    assert body["url"] == chat_url(conversation)


def test_it_refuses_get_for_new_chat(alice_client):
    assert alice_client.get("/c/new").status_code == 405


# --- the chat page ---

ACCESSIBLE_NAMES = [
    'aria-label="Message"',
    'aria-label="Send"',
    'aria-label="Stop"',
    'aria-label="New chat"',
    'aria-label="Search chats"',
    'aria-label="Conversation settings"',
]


def test_it_renders_the_chat_page_with_its_accessible_names(alice_client, conversation):
    response = alice_client.get(chat_url(conversation))
    html = response.content.decode()
    assert response.status_code == 200
    for name in ACCESSIBLE_NAMES:
        assert name in html
    # The reply buttons are built by the script, per reply.
    script = _static("chat/render.js")
    for name in ("Regenerate", "Previous version", "Next version", "Edit"):
        assert f'"aria-label": "{name}"' in script


def test_it_embeds_the_conversation_config_for_the_script(alice_client, conversation):
    response = alice_client.get(chat_url(conversation))
    config = response.context["chat_config"]
    assert config["conversation"]["id"] == str(conversation.id)
    assert config["ws_url"] == f"/ws/conversations/{conversation.id}/"
    assert 'id="chat-config"' in response.content.decode()


def test_it_never_puts_the_api_key_in_the_page(alice_client, conversation, settings):
    settings.GEMINI_API_KEY = "AIza-very-secret-key-123"
    html = alice_client.get(chat_url(conversation)).content.decode()
    assert "AIza-very-secret-key-123" not in html
    assert "gemini-3.5-flash" in html  # the key enables the Gemini models, not shown itself


def test_it_escapes_titles(alice_client, conversation):
    services.conversation_rename(conversation=conversation, title="<script>alert(1)</script>")
    html = alice_client.get(chat_url(conversation)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_marks_the_current_conversation_in_the_sidebar(alice, alice_client, conversation):
    other = services.conversation_create(owner=alice, model="local", title="Other")
    html = alice_client.get(chat_url(conversation)).content.decode()
    assert f'href="/c/{conversation.id}/" aria-current="page"' in html
    assert f'href="/c/{other.id}/" aria-current' not in html


# --- rename ---


def test_it_renames_a_conversation(alice_client, conversation):
    response = alice_client.post(chat_url(conversation, "rename"), {"title": "  Trip plans "})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Trip plans"


def test_it_renames_with_fetch(alice_client, conversation):
    response = alice_client.post(chat_url(conversation, "rename"), {"title": "Trip"}, **JSON)
    assert response.status_code == 200
    assert response.json()["conversation"]["title"] == "Trip"


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_it_rejects_a_bad_title(alice_client, conversation, title):
    response = alice_client.post(chat_url(conversation, "rename"), {"title": title}, **JSON)
    assert response.status_code == 400
    assert "title" in response.json()["errors"]
    conversation.refresh_from_db()
    assert conversation.title == ""


def test_it_refuses_get_for_rename(alice_client, conversation):
    assert alice_client.get(chat_url(conversation, "rename")).status_code == 405


# --- delete ---


def test_it_deletes_a_conversation(alice_client, conversation):
    response = alice_client.post(chat_url(conversation, "delete"))
    assert response.status_code == 302
    assert response.url == "/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_it_deletes_with_fetch(alice_client, conversation):
    response = alice_client.post(chat_url(conversation, "delete"), **JSON)
    assert response.json() == {"deleted": str(conversation.id), "redirect": "/"}
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_it_refuses_get_for_delete(alice_client, conversation):
    assert alice_client.get(chat_url(conversation, "delete")).status_code == 405
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_the_page_asks_before_deleting(alice_client, conversation):
    html = alice_client.get(chat_url(conversation)).content.decode()
    assert 'id="confirm-delete"' in html
    assert "This cannot be undone." in html


# --- settings ---


def test_it_saves_settings(alice_client, conversation, settings):
    settings.GEMINI_API_KEY = "key"
    data = settings_data(model="gemini-3.5-flash", stateful=None, thinking_level="low")
    response = alice_client.post(chat_url(conversation, "settings"), data)
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.model == "gemini-3.5-flash"
    assert conversation.system_instruction == "Be brief."
    assert conversation.stateful is False
    assert conversation.generation_settings == {
        **GENERATION_SETTINGS,
        "temperature": 0.7,
        "thinking_level": "low",
        "max_output_tokens": 512,
    }


def test_the_offline_model_refuses_a_thinking_level(alice_client, conversation):
    data = settings_data(thinking_level="low")
    response = alice_client.post(chat_url(conversation, "settings"), data, **JSON)
    assert response.status_code == 400
    assert "does not think" in response.json()["errors"]["thinking_level"][0]
    conversation.refresh_from_db()
    assert conversation.system_instruction == ""  # nothing saved


def test_the_offline_model_leaves_stateful_as_it_was(alice_client, conversation):
    # The page disables the checkbox for the offline model, so it is not posted.
    response = alice_client.post(chat_url(conversation, "settings"), settings_data(stateful=None))
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.stateful is True


def test_the_settings_form_marks_what_the_offline_model_ignores(alice_client, conversation,
                                                                settings):
    settings.GEMINI_API_KEY = "key"
    response = alice_client.get(chat_url(conversation))
    assert 'data-local-models="local"' in response.content.decode()
    unsupported = json.loads(response.context["settings_form"].fields["model"]
                             .widget.attrs["data-unsupported"])
    assert "does not think" in unsupported["local"]["thinking_level"]
    assert "keeps nothing upstream" in unsupported["local"]["stateful"]
    assert {"tool_google_search", "response_schema", "aspect_ratio"} <= set(unsupported["local"])
    assert "temperature" not in unsupported["local"]  # llama.cpp samples too
    assert set(unsupported["gemini-3.5-flash"]) == {"image_output", "aspect_ratio", "image_size"}


def test_it_saves_settings_with_fetch(alice_client, conversation):
    data = settings_data(temperature="", max_output_tokens="")
    response = alice_client.post(chat_url(conversation, "settings"), data, **JSON)
    assert response.status_code == 200
    body = response.json()["conversation"]
    assert body["generation_settings"]["temperature"] is None
    assert body["generation_settings"]["max_output_tokens"] is None
    assert body["stateful"] is True


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "gpt-5"),
        ("temperature", "3"),
        ("temperature", "warm"),
        ("max_output_tokens", "0"),
        ("max_output_tokens", "1.5"),
        ("thinking_level", "extreme"),
    ],
)
def test_it_rejects_bad_settings(alice_client, conversation, field, value):
    response = alice_client.post(
        chat_url(conversation, "settings"), settings_data(**{field: value}), **JSON
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors
    assert errors[field][0]
    conversation.refresh_from_db()
    assert conversation.system_instruction == ""


def test_it_rejects_a_model_that_needs_a_missing_key(alice_client, conversation, settings):
    settings.GEMINI_API_KEY = ""
    response = alice_client.post(
        chat_url(conversation, "settings"), settings_data(model="gemini-3.5-flash"), **JSON
    )
    assert response.status_code == 400
    assert "model" in response.json()["errors"]


def test_it_shows_settings_errors_on_a_plain_post(alice_client, conversation):
    response = alice_client.post(chat_url(conversation, "settings"), settings_data(temperature="3"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Temperature must be a number between 0 and 2." in html
    assert '<dialog id="settings-dialog"' in html and " open>" in html


def test_it_offers_gemini_models_only_with_a_key(alice_client, conversation, settings):
    settings.GEMINI_API_KEY = ""
    html = alice_client.get(chat_url(conversation)).content.decode()
    assert 'value="local"' in html
    assert "gemini-3.5-flash" not in html


# --- search ---


@pytest.fixture
def titled(alice):
    return [
        services.conversation_create(owner=alice, model="local", title=title)
        for title in ("Trip to Rome", "Tax return", "Rome restaurants")
    ]


def test_it_filters_the_sidebar_by_title(alice_client, titled):
    response = alice_client.get(chat_url(titled[0]), {"q": "rome"})
    names = [c.title for g in response.context["conversation_groups"] for c in g["conversations"]]
    assert sorted(names) == ["Rome restaurants", "Trip to Rome"]


def test_it_searches_for_fetch_as_html(alice_client, titled):
    response = alice_client.get("/c/search", {"q": "tax"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Tax return" in html
    assert "Rome" not in html


def test_it_searches_as_json(alice_client, titled, bob):
    services.conversation_create(owner=bob, model="local", title="Bob in Rome")
    response = alice_client.get("/c/search", {"q": "ROME"}, **JSON)
    titles = sorted(c["title"] for c in response.json()["conversations"])
    assert titles == ["Rome restaurants", "Trip to Rome"]


def test_it_says_when_nothing_matches(alice_client, titled):
    html = alice_client.get("/c/search", {"q": "zebra"}).content.decode()
    assert "No chats match" in html


def test_it_keeps_the_search_when_redirecting_from_the_index(alice_client, titled):
    response = alice_client.get("/", {"q": "rome"})
    assert response.status_code == 302
    assert response.url.endswith("?q=rome")


# --- sign-up ---

PASSPHRASE = "a long enough passphrase 42"
SIGNUP = {"username": "carol", "password1": PASSPHRASE, "password2": PASSPHRASE}


def test_it_hides_signup_when_disabled(client, settings, django_user_model):
    settings.ALLOW_SIGNUP = False
    assert client.get("/accounts/signup/").status_code == 404
    assert client.post("/accounts/signup/", SIGNUP).status_code == 404
    assert not django_user_model.objects.filter(username="carol").exists()


def test_it_signs_up_when_enabled(client, settings, django_user_model):
    settings.ALLOW_SIGNUP = True
    assert client.get("/accounts/signup/").status_code == 200
    response = client.post("/accounts/signup/", SIGNUP)
    assert response.status_code == 302
    assert django_user_model.objects.filter(username="carol").exists()
    assert client.get("/").status_code == 200  # logged in right away


def test_it_rejects_a_weak_signup(client, settings, django_user_model):
    settings.ALLOW_SIGNUP = True
    response = client.post("/accounts/signup/", dict(SIGNUP, password2="something else"))
    assert response.status_code == 200
    assert "didn’t match" in response.content.decode()
    assert not django_user_model.objects.filter(username="carol").exists()


def test_the_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'name="username"' in response.content.decode()


def _static(path: str) -> str:
    from django.contrib.staticfiles import finders

    with open(finders.find(path), encoding="utf-8") as handle:
        return handle.read()


def test_the_chat_config_is_valid_json(alice_client, conversation):
    html = alice_client.get(chat_url(conversation)).content.decode()
    start = html.index('id="chat-config" type="application/json">') + len(
        'id="chat-config" type="application/json">'
    )
    config = json.loads(html[start : html.index("</script>", start)])
    assert set(config) == {"conversation", "url", "ws_url", "settings_url"}


# --- other tabs hear about renames and settings ---


@pytest.fixture
def listener(conversation):
    """A channel in the conversation's group, as an open websocket would have."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from conversations import protocol

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(protocol.group_name(conversation.id), channel)

    def receive() -> dict:
        message = async_to_sync(layer.receive)(channel)
        assert message["type"] == "turn.frame"
        return json.loads(message["text"])

    return receive


def test_it_announces_a_rename_to_open_sockets(alice_client, conversation, listener):
    alice_client.post(chat_url(conversation, "rename"), {"title": "Renamed"})
    frame = listener()
    assert frame["type"] == "conversation.updated"
    assert frame["conversation"]["title"] == "Renamed"


def test_it_announces_new_settings_to_open_sockets(alice_client, conversation, listener):
    alice_client.post(chat_url(conversation, "settings"), settings_data(system_instruction="Hi"))
    frame = listener()
    assert frame["conversation"]["system_instruction"] == "Hi"
