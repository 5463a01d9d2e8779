import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from conversations import selectors, services
from conversations.interactions import output_text
from conversations.models import Turn


def send(conversation, client_id, parent=None, value="hi"):
    """A turn whose reply has finished (a running parent cannot be chained onto)."""
    turn, _ = services.turn_create(
        conversation=conversation, client_id=client_id,
        input=[{"type": "text", "text": value}], parent=parent,
    )
    services.turn_finish(turn_id=turn.pk, status=Turn.Status.COMPLETED, steps=[], seq=1)
    turn.refresh_from_db()
    return turn


def test_it_returns_the_owners_conversation(alice, conversation):
    found = selectors.conversation_for_user(user=alice, conversation_id=conversation.id)
    assert found == conversation


@pytest.mark.parametrize("conversation_id", [str, lambda c: uuid.uuid4(), lambda c: "nope"])
def test_it_404s_for_someone_else_or_a_bad_id(bob, conversation, conversation_id):
    with pytest.raises(Http404):
        selectors.conversation_for_user(user=bob, conversation_id=conversation_id(conversation.id))


def test_it_404s_for_anonymous(conversation):
    with pytest.raises(Http404):
        selectors.conversation_for_user(user=AnonymousUser(), conversation_id=conversation.id)


def test_it_lists_own_conversations_newest_first(alice, bob):
    older = services.conversation_create(owner=alice, model="m", title="Older")
    newer = services.conversation_create(owner=alice, model="m", title="Newer")
    services.conversation_create(owner=bob, model="m", title="Bob's")
    assert list(selectors.conversation_list(user=alice)) == [newer, older]
    send(older, "c1")
    assert list(selectors.conversation_list(user=alice)) == [older, newer]


def test_it_searches_titles(alice):
    services.conversation_create(owner=alice, model="m", title="Trip to Lisbon")
    services.conversation_create(owner=alice, model="m", title="Tax return")
    titles = [c.title for c in selectors.conversation_list(user=alice, query=" lisbon ")]
    assert titles == ["Trip to Lisbon"]


def test_it_walks_ancestors_from_the_root(conversation, django_assert_num_queries):
    root = send(conversation, "a")
    middle = send(conversation, "b", parent=root)
    send(conversation, "sibling", parent=root)
    leaf = send(conversation, "c", parent=middle)
    with django_assert_num_queries(2):  # the branch's ids, then its turns
        chain = selectors.turn_ancestors(turn=leaf)
    assert [t.pk for t in chain] == [root.pk, middle.pk, leaf.pk]


def test_it_shapes_a_turn_for_the_websocket(conversation):
    root = send(conversation, "a")
    turn = send(conversation, "b", parent=root, value="hello")
    assert selectors.turn_to_dict(turn) == {
        "id": str(turn.id),
        "parent_id": str(root.id),
        "client_id": "b",
        "input": [{"type": "text", "text": "hello"}],
        "status": "completed",
        "steps": [],
        "usage": None,
        "error": None,
        "output_check": None,
        "seq": 1,
        "interaction_id": "",
        "created": turn.created.isoformat(),
    }
    assert selectors.turn_to_dict(root)["parent_id"] is None


def test_it_shapes_a_conversation_for_the_websocket(conversation):
    assert selectors.conversation_to_dict(conversation) == {
        "id": str(conversation.id),
        "title": "",
        "model": "local",
        "model_label": "SmolLM2 135M (offline)",
        "takes_files": False,
        "stateful": True,
        "system_instruction": "",
        "generation_settings": conversation.generation_settings,
        "tools": [],
        "response_schema": None,
        "structured": False,
        "active_settings": [],
    }


def test_a_gemini_conversation_takes_files(alice):
    gemini = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    assert selectors.conversation_to_dict(gemini)["takes_files"] is True


def model_output(*blocks):
    return {"type": "model_output", "content": list(blocks)}


def t(value):
    return {"type": "text", "text": value}


IMAGE = {"type": "image", "uri": "files/x"}


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], ""),
        ([model_output(t("Hello"))], "Hello"),
        ([model_output(t("Part one. ")), {"type": "thought"}, model_output(t("Part two."))],
         "Part one. Part two."),
        ([model_output(t("Before")), {"type": "function_call"}, model_output(t("After"))],
         "After"),
        ([model_output(t("Only")), {"type": "function_result"}], "Only"),
        ([model_output(t("A"), IMAGE, t("B"))], "B"),
        ([model_output(t("Old")), {"type": "user_input"}, model_output(t("New"))], "New"),
        ([{"type": "thought", "summary": [t("hmm")]}], ""),
    ],
)
def test_it_extracts_the_reply_text_like_the_sdk(steps, expected):
    assert output_text(steps) == expected


def test_it_joins_input_text_blocks():
    assert selectors.input_text([t("a"), IMAGE, t("b")]) == "a\nb"
