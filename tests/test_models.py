import pytest
from django.db import IntegrityError

from conversations.models import Conversation, Turn

CONTRACT_STATUSES = {
    "queued", "in_progress", "completed", "requires_action", "incomplete", "failed", "cancelled",
}


def make_turn(conversation, client_id="c1", parent=None):
    return Turn.objects.create(
        conversation=conversation, client_id=client_id, parent=parent,
        input=[{"type": "text", "text": "hi"}],
    )


def test_it_has_the_contract_statuses():
    assert set(Turn.Status.values) == CONTRACT_STATUSES


def test_it_defaults_a_new_conversation(conversation):
    assert conversation.stateful is True
    assert conversation.title == ""
    assert conversation.generation_settings == {
        "temperature": None, "thinking_level": "", "max_output_tokens": None,
        "top_p": None, "seed": None, "stop_sequences": None, "thinking_summaries": "",
        "aspect_ratio": "", "image_size": "", "image_output": "",
    }


def test_it_defaults_a_new_turn(conversation):
    turn = make_turn(conversation)
    assert turn.status == Turn.Status.QUEUED
    assert (turn.steps, turn.seq, turn.usage, turn.error) == ([], 0, None, None)


def test_it_refuses_a_duplicate_client_id_in_one_conversation(conversation):
    make_turn(conversation)
    with pytest.raises(IntegrityError):
        make_turn(conversation)


def test_it_allows_the_same_client_id_in_another_conversation(alice, conversation):
    other = Conversation.objects.create(owner=alice, model="local")
    make_turn(conversation)
    make_turn(other)
    assert Turn.objects.filter(client_id="c1").count() == 2


def test_it_deletes_turns_with_their_conversation(conversation):
    root = make_turn(conversation)
    make_turn(conversation, "c2", parent=root)
    conversation.delete()
    assert not Turn.objects.exists()


def test_it_orders_conversations_by_latest_activity(alice):
    first = Conversation.objects.create(owner=alice, model="m")
    second = Conversation.objects.create(owner=alice, model="m")
    first.save()
    assert list(Conversation.objects.all()) == [first, second]


def test_it_orders_turns_oldest_first(conversation):
    turns = [make_turn(conversation, f"c{i}") for i in range(3)]
    assert list(conversation.turns.all()) == turns
