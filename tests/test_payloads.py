import pytest

from conversations import payloads, services
from conversations.models import Turn

pytestmark = pytest.mark.django_db


def exchange(conversation, text, parent=None):
    turn, _ = services.turn_create(conversation=conversation, client_id=text, parent=parent,
                                   input=[{"type": "text", "text": text}])
    services.turn_finish(turn_id=turn.pk, status=Turn.Status.COMPLETED, seq=1,
                         interaction_id=f"int-{text}",
                         steps=[{"type": "model_output", "content": [{"type": "text",
                                                                       "text": "ok"}]}])
    turn.refresh_from_db()
    return turn


def body_for(conversation, parent):
    turn, _ = services.turn_create(conversation=conversation, client_id="next", parent=parent,
                                   input=[{"type": "text", "text": "next"}])
    return payloads.request_body(conversation, turn, parent, [parent])


def test_a_stateful_gemini_turn_chains_on_its_parent(alice):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    body = body_for(chat, exchange(chat, "first"))
    assert body["previous_interaction_id"] == "int-first"
    assert body["input"] == [{"type": "user_input", "content": [{"type": "text", "text": "next"}]}]
    assert "store" not in body


def test_the_offline_model_is_always_sent_the_whole_branch(alice):
    chat = services.conversation_create(owner=alice, model="local")
    assert chat.stateful  # the stored choice stays; it means nothing to this model
    body = body_for(chat, exchange(chat, "first"))
    assert "previous_interaction_id" not in body
    assert [step["type"] for step in body["input"]] == ["user_input", "model_output",
                                                        "user_input"]
    assert body["store"] is False  # nothing for the engine to remember


def branch_of(chat, length):
    parent = None
    for i in range(length):
        parent = exchange(chat, f"m{i}", parent)
    turn, _ = services.turn_create(conversation=chat, client_id="new", parent=parent,
                                   input=[{"type": "text", "text": "new"}])
    return turn, parent


def test_a_chained_turn_loads_its_parent_and_not_the_branch(alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conversations.runner import _load

    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    turn, parent = branch_of(chat, 5)
    with CaptureQueriesContext(connection) as queries:
        loaded, got_parent, ancestors = _load(turn)
    assert len(queries) == 2  # the conversation, the parent
    assert (loaded, got_parent, ancestors) == (chat, parent, None)
    body = payloads.request_body(loaded, turn, got_parent, ancestors)
    assert body["previous_interaction_id"] == "int-m4"


@pytest.mark.parametrize("change", ["stateless", "unchainable", "offline"])
def test_a_turn_that_replays_loads_the_whole_branch(alice, change):
    from conversations.runner import _load

    model = "local" if change == "offline" else "gemini-3.5-flash"
    chat = services.conversation_create(owner=alice, model=model)
    chat.stateful = change != "stateless"
    chat.save()
    turn, parent = branch_of(chat, 3)
    if change == "unchainable":
        Turn.objects.filter(pk=parent.pk).update(status=Turn.Status.FAILED)
    _, got_parent, ancestors = _load(turn)
    assert [t.client_id for t in ancestors] == ["m0", "m1", "m2"]
    body = payloads.request_body(chat, turn, got_parent, ancestors)
    assert "previous_interaction_id" not in body
    assert [s["type"] for s in body["input"]] == ["user_input", "model_output"] * 3 + [
        "user_input"]


def test_replaying_without_the_branch_is_refused(alice):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    turn, parent = branch_of(chat, 2)
    assert "previous_interaction_id" in payloads.request_body(chat, turn, parent)
    with pytest.raises(ValueError, match="needs its turns"):
        payloads.request_body(chat, turn, parent, replay=True)
    replayed = payloads.request_body(chat, turn, parent, [parent], replay=True)
    assert [s["type"] for s in replayed["input"]] == ["user_input", "model_output",
                                                      "user_input"]


def test_a_first_turn_needs_no_branch(alice):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    turn, _ = services.turn_create(conversation=chat, client_id="one", parent=None,
                                   input=[{"type": "text", "text": "hi"}])
    assert payloads.request_body(chat, turn, None)["input"] == [
        {"type": "user_input", "content": [{"type": "text", "text": "hi"}]}]
