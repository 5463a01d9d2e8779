"""The read-only conversation page: a reviewer's door (admin, logged) and a shared link's
(signed-in teammates, revocable)."""

import json
import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from chatsite.middleware import POLICY
from conversations import files_views, selectors, services
from conversations.generated import save_generated
from conversations.models import Conversation, ReviewLog
from tests import samples

JSON = {"HTTP_ACCEPT": "application/json"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def reply(conversation, client_id, text, parent=None, answer="Fine.", **finish):
    turn, _ = services.turn_create(conversation=conversation, client_id=client_id,
                                   input=[{"type": "text", "text": text}], parent=parent)
    steps = [{"type": "model_output", "content": [{"type": "text", "text": answer}]}]
    services.turn_finish(turn_id=turn.pk, steps=steps, seq=1,
                         **{"status": "completed", **finish})
    turn.refresh_from_db()
    return turn


@pytest.fixture
def tree(conversation):
    """first -> (second, second-again): two versions of the second message."""
    first = reply(conversation, "c1", "first question")
    second = reply(conversation, "c2", "second question", parent=first)
    again = reply(conversation, "c3", "second question, again", parent=first,
                  status="failed", error={"code": "quota", "message": "Out of quota."})
    return [first, second, again]


@pytest.fixture
def reviewer(django_user_model):
    user = django_user_model.objects.create_user("rita", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="review_conversation"))
    return user


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam", password="pw", is_staff=True)


def review_url(conversation) -> str:
    return f"/admin/conversations/conversation/{conversation.pk}/review/"


def embedded(response) -> dict:
    match = re.search(r'<script id="readonly-data" type="application/json">(.*?)</script>',
                      response.content.decode(), re.S)
    assert match, "the page embeds its turns"
    return json.loads(match.group(1))


# --- the reviewer's door -------------------------------------------------------------------

def test_a_reviewer_gets_every_turn_of_every_branch(reviewer, conversation, tree):
    response = client_for(reviewer).get(review_url(conversation))
    assert response.status_code == 200
    data = embedded(response)
    assert [t["id"] for t in data["turns"]] == [str(t.pk) for t in tree]
    versions = [str(tree[1].pk), str(tree[2].pk)]
    assert [t["siblings"] for t in data["turns"][1:]] == [versions, versions]
    assert data["turns"][2]["error"]["message"] == "Out of quota."
    assert data["leaf"] == str(tree[2].pk)  # the branch its owner had on screen
    assert data["conversation"]["title"] == "first question"


def test_a_superuser_may_review(admin_user, conversation, tree):
    assert client_for(admin_user).get(review_url(conversation)).status_code == 200


def test_staff_without_the_permission_get_no_review_page(staff, conversation, tree):
    response = client_for(staff).get(review_url(conversation))
    assert response.status_code == 403
    assert "first question" not in response.content.decode()
    assert not ReviewLog.objects.exists()


def test_others_are_sent_to_the_admin_sign_in(alice_client, client, conversation, tree):
    for visitor in (alice_client, client):  # the owner herself is not staff; nobody signed in
        response = visitor.get(review_url(conversation))
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert not ReviewLog.objects.exists()


def test_every_review_writes_one_log_row(reviewer, conversation, tree):
    client = client_for(reviewer)
    client.get(review_url(conversation), REMOTE_ADDR="203.0.113.7",
               HTTP_USER_AGENT="Firefox/140")
    client.get(review_url(conversation))
    first, second = ReviewLog.objects.order_by("at", "pk")
    assert (first.reviewer, first.reviewer_name, first.owner_name) == (reviewer, "rita", "alice")
    assert (first.conversation_id, first.conversation_title) == (conversation.pk,
                                                                 "first question")
    assert (first.address, first.user_agent) == ("203.0.113.7", "Firefox/140")
    assert second.address == "127.0.0.1"


def test_an_unknown_conversation_is_a_404_and_logs_nothing(reviewer):
    response = client_for(reviewer).get(
        "/admin/conversations/conversation/00000000-0000-0000-0000-000000000000/review/")
    assert response.status_code == 404
    assert not ReviewLog.objects.exists()


def test_the_review_page_keeps_the_chat_pages_content_security_policy(reviewer, conversation):
    response = client_for(reviewer).get(review_url(conversation))
    assert response["Content-Security-Policy"] == POLICY
    assert "no-store" in response["Cache-Control"]


def test_model_output_cannot_end_the_embedded_json(reviewer, conversation):
    reply(conversation, "x", "hi", answer="</script><script>alert(1)</script>")
    page = client_for(reviewer).get(review_url(conversation)).content.decode()
    assert "<script>alert(1)" not in page
    assert embedded_text(page) == "</script><script>alert(1)</script>"


def embedded_text(page: str) -> str:
    data = json.loads(re.search(r'"readonly-data" type="application/json">(.*?)</script>',
                                page, re.S).group(1))
    return data["turns"][0]["steps"][0]["content"][0]["text"]


def test_a_huge_conversation_comes_in_pages_of_turns(reviewer, conversation, settings):
    settings.REVIEW_TURNS_PAGE = 2
    parent = None
    for n in range(5):
        parent = reply(conversation, f"c{n}", f"question {n}", parent=parent)
    client = client_for(reviewer)

    def page(query):
        response = client.get(review_url(conversation) + query)
        return [t["input"][0]["text"] for t in embedded(response)["turns"]], response

    assert page("")[0] == ["question 0", "question 1"]
    texts, response = page("?page=2")
    assert texts == ["question 2", "question 3"]
    assert "Turns 3–4 of 5" in response.content.decode()
    assert page("?page=3")[0] == ["question 4"]
    assert page("?page=99")[0] == ["question 4"]  # past the end: the last page
    assert page("?page=x")[0] == ["question 0", "question 1"]


def test_the_page_has_nothing_to_change_the_conversation_with(reviewer, conversation, tree):
    page = client_for(reviewer).get(review_url(conversation)).content.decode()
    for control in ("composer", "ws_url", "settings-dialog", "<form"):
        assert control not in page
    assert "chat/review.js" in page


# --- shared links ----------------------------------------------------------------------------

@pytest.fixture
def bob_client(bob) -> Client:
    return client_for(bob)


def share(client, conversation) -> dict:
    response = client.post(f"/c/{conversation.pk}/share", **JSON)
    assert response.status_code == 200
    return response.json()


def test_the_owner_creates_a_link_once(alice_client, conversation):
    first = share(alice_client, conversation)
    conversation.refresh_from_db()
    assert len(conversation.share_token) >= 43  # 32 random bytes
    assert first == {"shared": True,
                     "url": f"http://testserver/shared/{conversation.share_token}/"}
    assert share(alice_client, conversation) == first  # sharing again keeps the same link


def test_a_signed_in_teammate_reads_a_shared_conversation(alice_client, bob_client,
                                                           conversation, tree):
    url = share(alice_client, conversation)["url"]
    response = bob_client.get(url)
    assert response.status_code == 200
    assert [t["id"] for t in embedded(response)["turns"]] == [str(t.pk) for t in tree]
    page = response.content.decode()
    assert "Shared by alice" in page
    for control in ("composer", "ws_url", "settings-dialog", "<form"):
        assert control not in page
    assert response["Content-Security-Policy"] == POLICY
    assert not ReviewLog.objects.exists()  # a teammate's read is not a review


def test_a_logged_out_visitor_is_sent_to_sign_in_and_sees_nothing(alice_client, client,
                                                                  conversation, tree):
    url = share(alice_client, conversation)["url"]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert b"first question" not in response.content
    followed = client.get(url, follow=True).content.decode()
    assert "first question" not in followed


def test_a_revoked_link_is_a_404(alice_client, bob_client, conversation, tree):
    url = share(alice_client, conversation)["url"]
    response = alice_client.post(f"/c/{conversation.pk}/unshare", **JSON)
    assert response.json() == {"shared": False, "url": None}
    assert bob_client.get(url).status_code == 404
    assert share(alice_client, conversation)["url"] != url  # a new link, not the old one back
    assert bob_client.get(url).status_code == 404


def test_a_wrong_token_is_a_404(bob_client, conversation):
    assert bob_client.get("/shared/not-a-token/").status_code == 404
    assert not Conversation.objects.filter(share_token="not-a-token").exists()


def test_an_unshared_conversation_has_no_link_at_all(bob_client, conversation):
    # Its token is empty: no address reaches it (the empty path is not even routed).
    assert bob_client.get("/shared//").status_code == 404


def test_only_the_owner_shares_or_revokes(alice_client, bob_client, conversation):
    assert bob_client.post(f"/c/{conversation.pk}/share", **JSON).status_code == 404
    conversation.refresh_from_db()
    assert conversation.share_token == ""
    share(alice_client, conversation)
    conversation.refresh_from_db()
    token = conversation.share_token
    assert bob_client.post(f"/c/{conversation.pk}/unshare", **JSON).status_code == 404
    conversation.refresh_from_db()
    assert conversation.share_token == token


def test_sharing_takes_a_post(alice_client, conversation):
    assert alice_client.get(f"/c/{conversation.pk}/share").status_code == 405
    assert alice_client.get(f"/c/{conversation.pk}/unshare").status_code == 405


def test_a_plain_form_post_comes_back_to_the_chat(alice_client, conversation):
    response = alice_client.post(f"/c/{conversation.pk}/share", follow=True)
    assert response.redirect_chain[-1][0] == f"/c/{conversation.pk}/"
    assert "can now read this chat" in response.content.decode()


def test_the_chat_page_says_whether_it_is_shared(alice_client, conversation):
    page = alice_client.get(f"/c/{conversation.pk}/").content.decode()
    assert 'data-link=""' in page
    share(alice_client, conversation)
    conversation.refresh_from_db()
    page = alice_client.get(f"/c/{conversation.pk}/").content.decode()
    assert f'data-link="/shared/{conversation.share_token}/"' in page
    assert '<span class="share-label">Shared</span>' in page


# --- a shared link's files ---------------------------------------------------------------

# Files are served as an async stream (daphne's way); the sync test client collects it whole.
streamed = pytest.mark.filterwarnings(
    "ignore:StreamingHttpResponse must consume asynchronous iterators")


@pytest.fixture
def files(settings, tmp_path, alice, conversation) -> dict:
    """alice's upload in a message of `conversation`, the image its reply generated, and
    another of her files that only another chat of hers shows."""
    settings.MEDIA_ROOT = tmp_path / "media"
    stored = {name: save_generated(owner_id=alice.pk, data=samples.png(rgb=rgb), kind="image",
                                   name=f"{name}.png")
              for name, rgb in (("upload", b"\x01\x02\x03"), ("generated", b"\x04\x05\x06"),
                                ("elsewhere", b"\x07\x08\x09"))}
    turn, _ = services.turn_create(
        conversation=conversation, client_id="f1", parent=None,
        input=[selectors.attachment_block(stored["upload"]),
               {"type": "text", "text": f"and {stored['elsewhere'].pk} in words"}])
    steps = [{"type": "model_output",
              "content": [selectors.attachment_block(stored["generated"])]}]
    services.turn_finish(turn_id=turn.pk, status="completed", steps=steps, seq=1)
    other = services.conversation_create(owner=alice, model="local")
    services.turn_create(conversation=other, client_id="f2", parent=None,
                         input=[selectors.attachment_block(stored["elsewhere"])])
    services.conversation_share(conversation=other)
    return stored


def shared_file(conversation, attachment) -> str:
    conversation.refresh_from_db()
    return f"/shared/{conversation.share_token}/files/{attachment.pk}/"


@streamed
def test_a_teammate_gets_a_shared_chats_files_through_its_link(alice_client, bob_client,
                                                               conversation, files):
    page = bob_client.get(share(alice_client, conversation)["url"])
    conversation.refresh_from_db()
    assert embedded(page)["files"] == f"/shared/{conversation.share_token}/files/"
    for name in ("upload", "generated"):
        response = bob_client.get(shared_file(conversation, files[name]))
        assert response.status_code == 200
        assert b"".join(response) == files[name].file.open("rb").read()
        assert response["Content-Type"] == "image/png"
        assert response["Content-Disposition"] == f'inline; filename="{name}.png"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == files_views.FILE_POLICY
        assert response["Cache-Control"] == "private, no-cache"  # a revocation holds at once
        download = bob_client.get(shared_file(conversation, files[name]) + "?download=1")
        assert download["Content-Disposition"] == f'attachment; filename="{name}.png"'
        assert bob_client.get(f"/files/{files[name].pk}/").status_code == 404  # still hers


def test_a_link_serves_no_file_its_chat_does_not_show(alice_client, bob_client, conversation,
                                                      files, bob):
    share(alice_client, conversation)
    # Her file of another chat (shared too, and named in this one's text), a file of bob's,
    # and an id of nothing.
    bobs = save_generated(owner_id=bob.pk, data=samples.png(), kind="image", name="b.png")
    for attachment in (files["elsewhere"], bobs):
        assert bob_client.get(shared_file(conversation, attachment)).status_code == 404
    unknown = f"/shared/{conversation.share_token}/files/{uuid.uuid4()}/"
    assert bob_client.get(unknown).status_code == 404


def test_a_revoked_or_signed_out_link_serves_no_file(alice_client, bob_client, client,
                                                     conversation, files):
    share(alice_client, conversation)
    url = shared_file(conversation, files["upload"])
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    alice_client.post(f"/c/{conversation.pk}/unshare", **JSON)
    assert bob_client.get(url).status_code == 404


def test_a_review_page_takes_files_from_files(reviewer, conversation, tree):
    assert embedded(client_for(reviewer).get(review_url(conversation)))["files"] is None
