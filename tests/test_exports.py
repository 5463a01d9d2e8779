"""Exports (JSON, Markdown) and imports of conversations: conversations/exports.py,
imports.py and export_views.py."""

import hashlib
import io
import json
import zipfile

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.test import Client

from conversations import exports, imports, search, services
from conversations.models import Attachment, Conversation, ReviewLog, Turn

JSON = {"HTTP_ACCEPT": "application/json"}
CITED = "Paella comes from València, Spain."  # non-ASCII: offsets are UTF-8 bytes

STEPS = [
    {"type": "thought", "signature": "c2lnbmF0dXJl", "summary": [
        {"type": "text", "text": "Secret pondering"}]},
    {"type": "google_search_call", "id": "s1", "arguments": {"queries": ["paella origin"]}},
    {"type": "google_search_result", "call_id": "s1", "result": [{"search_suggestions": "<b>"}]},
    {"type": "model_output", "content": [{"type": "text", "text": CITED, "annotations": [
        {"type": "url_citation", "url": "https://example.org/paella", "title": "Paella [history]",
         "start_index": 0, "end_index": len("Paella comes from València".encode())},
        {"type": "url_citation", "url": "javascript:alert(1)", "end_index": 3}]}]},
    {"type": "brand_new_step", "payload": {"kept": True}},
]


def finish(turn: Turn, text: str, steps=None, status="completed", **extra) -> None:
    steps = steps if steps is not None else [
        {"type": "model_output", "content": [{"type": "text", "text": text}]}]
    services.turn_finish(turn_id=turn.pk, status=status, steps=steps, seq=7,
                         interaction_id=f"int-{turn.client_id}", **extra)
    turn.refresh_from_db()


def send(conversation, client_id: str, text: str, parent=None, blocks=()) -> Turn:
    turn, _ = services.turn_create(conversation=conversation, client_id=client_id, parent=parent,
                                   input=[{"type": "text", "text": text}, *blocks])
    return turn


@pytest.fixture
def tree(alice):
    """Two branches (a regenerated reply, then an edit on the first), a failed turn and a
    running one; the branch on screen is root -> second reply -> follow-up."""
    conversation = services.conversation_create(owner=alice, model="local", title="Paella")
    root = send(conversation, "r", "Where is paella from?")
    finish(root, "", steps=STEPS, usage={"total_tokens": 42, "total_input_tokens": 30})
    first = send(conversation, "a", "Tell me more", parent=root)
    finish(first, "The first answer, on the other branch.")
    second = send(conversation, "b", "Tell me more, differently", parent=root)
    finish(second, "The second answer.", status="failed",
           error={"code": "upstream", "message": "Gemini said no.", "retryable": True})
    follow = send(conversation, "c", "And rice?", parent=second)  # left running
    conversation.refresh_from_db()
    return conversation, [root, first, second, follow]


def exported(conversation) -> dict:
    return json.loads(exports.export_json([conversation]))


def test_an_export_imports_back_as_the_same_turns_and_steps(tree, bob):
    conversation, turns = tree
    original = exported(conversation)
    [copy] = imports.conversations_import(owner=bob, data=exports.export_json([conversation])
                                          ).conversations
    assert copy.owner == bob and copy.pk != conversation.pk and copy.title == "Paella"
    again = exported(copy)["conversations"][0]
    before = original["conversations"][0]
    assert len(again["turns"]) == len(before["turns"]) == 4
    new_id = {b["id"]: a["id"] for b, a in zip(before["turns"], again["turns"], strict=True)}
    assert not set(new_id) & set(new_id.values())  # new ids everywhere
    for b, a in zip(before["turns"], again["turns"], strict=True):
        assert a["parent"] == (new_id[b["parent"]] if b["parent"] else None)
        for key in ("input", "steps", "usage", "created", "model"):
            assert a[key] == b[key], key
        assert (a["status"], a["error"]) == ((b["status"], b["error"]) if b["status"] != "queued"
                                             else ("failed", imports.INTERRUPTED))
    assert again["branch_leaf"] == new_id[before["branch_leaf"]]
    stored = Turn.objects.filter(conversation=copy)
    assert {t.interaction_id for t in stored} == {""}  # never chained onto the file's ids
    assert search.search("València", owner=bob).conversations == [copy]


def test_the_json_export_holds_everything_a_turn_has(tree):
    document = exported(tree[0])
    assert (document["format"], document["version"]) == ("chatsite-conversations", 1)
    root = document["conversations"][0]["turns"][0]
    assert root["steps"] == STEPS and root["usage"]["total_tokens"] == 42
    assert root["status"] == "completed" and root["parent"] is None and root["created"]


def test_markdown_shows_the_branch_on_screen_with_citations_as_footnotes(tree):
    markdown = exports.conversation_markdown(tree[0])
    assert markdown.startswith("# Paella\n")
    assert "## You\n\nWhere is paella from?" in markdown
    assert "Paella comes from València[^1], Spain." in markdown
    assert "[^1]: [Paella \\[history\\]](<https://example.org/paella>)" in markdown
    assert "javascript:" not in markdown
    assert "Secret pondering" not in markdown  # thoughts are left out
    assert "Searched the web: “paella origin”" in markdown
    assert "brand_new_step step, not shown" in markdown
    assert "The second answer." in markdown and "*The reply failed: Gemini said no.*" in markdown
    assert "The first answer" not in markdown  # the other branch


def test_a_citation_inside_a_character_moves_to_its_end():
    notes = exports._Footnotes()
    cut = len("Valè".encode()) - 1  # inside the two bytes of è
    text = exports._cited("València", [{"type": "url_citation", "url": "https://x.org",
                                        "end_index": cut}], notes)
    assert text == "Valè[^1]ncia"


# --- views --------------------------------------------------------------------------------


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def test_owners_download_one_chat_as_markdown_or_json(alice_client, tree):
    conversation = tree[0]
    response = alice_client.get(f"/c/{conversation.id}/export", {"format": "md"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/markdown")
    assert response["Content-Disposition"].startswith('attachment; filename="paella-')
    body = alice_client.get(f"/c/{conversation.id}/export", {"format": "json"}).content
    assert json.loads(body)["conversations"][0]["id"] == str(conversation.id)


def test_another_users_chat_is_a_404_to_export(bob_client, tree):
    conversation = tree[0]
    assert bob_client.get(f"/c/{conversation.id}/export").status_code == 404
    assert bob_client.get("/c/export", {"id": str(conversation.id)}).status_code == 404


def test_several_chats_export_as_one_json_or_a_zip_of_markdown(alice_client, alice, tree):
    other = services.conversation_create(owner=alice, model="local", title="Other")
    ids = [str(tree[0].id), str(other.id)]
    document = json.loads(alice_client.get("/c/export", {"id": ids, "format": "json"}).content)
    assert sorted(c["title"] for c in document["conversations"]) == ["Other", "Paella"]
    response = alice_client.get("/c/export", {"format": "md"})  # no ids: all of them
    assert response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert sorted(n.split("-")[0] for n in names) == ["other", "paella"]


def test_too_many_chats_for_one_export_are_refused_with_a_reason(alice_client, tree, settings):
    settings.EXPORT_MAX_CONVERSATIONS = 0
    response = alice_client.get("/c/export")
    assert response.status_code == 400
    assert "at most 0" in response.json()["error"] and response.json()["code"] == "too_many"


def test_importing_makes_new_chats_and_leads_to_the_first(bob_client, bob, tree):
    upload = ContentFile(exports.export_json([tree[0]]), name="chats.json")
    response = bob_client.post("/c/import", {"file": upload}, **JSON)
    assert response.status_code == 201
    [item] = response.json()["conversations"]
    assert response.json()["redirect"] == item["url"] == f"/c/{item['id']}/"
    assert Conversation.objects.get(pk=item["id"]).owner == bob


def refusal(client, data: bytes) -> tuple[int, dict]:
    response = client.post("/c/import", {"file": ContentFile(data, name="x.json")}, **JSON)
    return response.status_code, response.json()


def broken(tree, change) -> bytes:
    document = exported(tree[0])
    change(document["conversations"][0])
    return json.dumps(document).encode()


BROKEN = [
    (lambda c: c["turns"][1].update(parent="nobody"), "not in the file"),
    (lambda c: c["turns"][0].update(parent=c["turns"][3]["id"]), "its own ancestor"),
    (lambda c: c["turns"][2].update(status="exploded"), "turn 3: “status” must be one of"),
    (lambda c: c["turns"][0].update(input="text"), "“input” must be a list of objects"),
    (lambda c: c["turns"][1].update(id=c["turns"][0]["id"]), "repeats"),
    (lambda c: c["turns"][0].update(created="yesterday"), "“created” must be a date"),
    (lambda c: c.update(generation_settings={"temperature": 9}), "Temperature must be"),
    (lambda c: c.update(system_instruction=["x"]), "“system_instruction” must be text"),
]


@pytest.mark.parametrize(("change", "message"), BROKEN)
def test_a_broken_export_is_refused_saying_where_and_nothing_is_kept(bob_client, bob, tree,
                                                                     change, message):
    status, body = refusal(bob_client, broken(tree, change))
    assert status == 400 and body["code"] == "invalid"
    assert message in body["error"] and body["error"].startswith("Conversation 1")
    assert not Conversation.objects.filter(owner=bob).exists()


@pytest.mark.parametrize(("data", "code"), [
    (b"\xff\xfe not text", "not_json"),
    (b"[1, 2]", "not_an_export"),
    (b'{"format": "chatsite-conversations", "version": 99, "conversations": []}',
     "unknown_version"),
    (b"[" * 100_000 + b"]" * 100_000, "not_json"),
])
def test_what_is_not_an_export_is_refused(bob_client, data, code):
    status, body = refusal(bob_client, data)
    assert (status, body["code"]) == (400, code) and body["error"]


def test_a_file_over_the_import_limit_is_refused_with_413(bob_client, tree, settings):
    settings.IMPORT_MAX_BYTES = 100
    status, body = refusal(bob_client, exports.export_json([tree[0]]))
    assert status == 413 and "at most 0.0 MiB (IMPORT_MAX_BYTES)" in body["error"]


def test_a_model_this_server_does_not_offer_is_replaced_and_said(bob_client, tree, settings):
    settings.GEMINI_API_KEY = ""
    data = broken(tree, lambda c: c.update(model="gemini-3.5-flash",
                                           generation_settings={"thinking_level": "high"}))
    response = bob_client.post("/c/import", {"file": ContentFile(data, name="x.json")}, **JSON)
    assert "does not offer" in response.json()["notes"][0]
    copy = Conversation.objects.get(pk=response.json()["conversations"][0]["id"])
    assert copy.model == "local" and copy.generation_settings["thinking_level"] == ""


# --- files --------------------------------------------------------------------------------


@pytest.fixture
def photo(alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = b"\x89PNG fake bytes"
    sha = hashlib.sha256(data).hexdigest()
    attachment = Attachment(owner=alice, sha256=sha, mime_type="image/png", kind="image",
                            name="cat.png", size=len(data))
    attachment.file.save("cat.png", ContentFile(data), save=True)
    return attachment


def photo_chat(alice, photo) -> Conversation:
    conversation = services.conversation_create(owner=alice, model="local", title="Cat")
    block = {"type": "image", "mime_type": "image/png", "attachment": {
        "id": str(photo.id), "url": f"/files/{photo.id}/", "name": "cat.png", "size": photo.size}}
    files_api = {"type": "document", "mime_type": "application/pdf",
                 "uri": "https://generativelanguage.googleapis.com/v1beta/files/someone-else"}
    finish(send(conversation, "p", "Look", blocks=[block, files_api]), "A cat.")
    return conversation


def test_files_are_referenced_by_sha256_and_relinked_for_their_owner(alice, bob, photo):
    data = exports.export_json([photo_chat(alice, photo)])
    ref = json.loads(data)["conversations"][0]["turns"][0]["input"][1]["attachment"]
    assert ref == {"sha256": photo.sha256, "name": "cat.png", "mime_type": "image/png",
                   "size": photo.size}
    [mine] = imports.conversations_import(owner=alice, data=data).conversations
    blocks = Turn.objects.get(conversation=mine).input
    assert blocks[1]["attachment"]["id"] == str(photo.id)
    assert blocks[2] == {"type": "text", "text": "[A file was not imported: document]"}
    [his] = imports.conversations_import(owner=bob, data=data).conversations
    assert Turn.objects.get(conversation=his).input[1] == {
        "type": "text", "text": "[A file was not imported: cat.png]"}


# --- admin --------------------------------------------------------------------------------


@pytest.fixture
def reviewer_client(django_user_model) -> Client:
    reviewer = django_user_model.objects.create_user("rita", password="x", is_staff=True)
    reviewer.user_permissions.add(Permission.objects.get(codename="review_conversation"))
    client = Client()
    client.force_login(reviewer)
    return client


def test_reviewers_export_selected_chats_and_the_review_log_says_so(reviewer_client, tree):
    conversation = tree[0]
    response = reviewer_client.post("/admin/conversations/conversation/", {
        "action": "export_selected_markdown", "_selected_action": [str(conversation.id)]})
    assert response.status_code == 200 and b"# Paella" in response.content
    log = ReviewLog.objects.get()
    assert (log.conversation_id, log.reviewer_name, log.owner_name) == (
        conversation.id, "rita", "alice")
