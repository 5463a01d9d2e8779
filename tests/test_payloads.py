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
    return payloads.request_body(conversation, turn, [parent])


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
