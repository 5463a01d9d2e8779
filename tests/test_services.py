import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from conversations import services
from conversations.models import GENERATION_SETTINGS, Conversation, Turn


def text(value: str) -> list[dict]:
    return [{"type": "text", "text": value}]


def send(conversation, value="Hello", client_id="c1", parent=None):
    return services.turn_create(
        conversation=conversation, client_id=client_id, input=text(value), parent=parent
    )


def test_it_creates_a_conversation(alice):
    c = services.conversation_create(owner=alice, model="local", title="  Plans ")
    assert (c.owner, c.model, c.title) == (alice, "local", "Plans")


def test_it_creates_a_queued_turn(conversation):
    turn, created = send(conversation)
    assert created
    assert turn.status == Turn.Status.QUEUED
    assert turn.input == text("Hello")
    assert turn.parent is None


def test_it_titles_the_conversation_from_the_first_message(conversation):
    first, _ = send(conversation, "  What is\nthe  capital of France? ")
    services.turn_finish(turn_id=first.pk, status=Turn.Status.COMPLETED, steps=[], seq=1)
    first.refresh_from_db()
    send(conversation, "And of Spain?", client_id="c2", parent=first)
    conversation.refresh_from_db()
    assert conversation.title == "What is the capital of France?"


def test_it_cuts_a_long_title_at_a_word():
    title = services.title_from_text("word " * 40)
    assert len(title) <= 61
    assert title.endswith("word…")


def test_it_keeps_a_title_already_set(alice):
    c = services.conversation_create(owner=alice, model="local", title="Mine")
    send(c, "Something else")
    c.refresh_from_db()
    assert c.title == "Mine"


def test_it_bumps_the_conversation_on_a_new_turn(conversation):
    before = conversation.updated
    send(conversation)
    conversation.refresh_from_db()
    assert conversation.updated > before


def test_it_is_idempotent_on_client_id(conversation):
    first, created = send(conversation)
    again, created_again = send(conversation, "a different text")
    assert created and not created_again
    assert again.pk == first.pk
    assert again.input == text("Hello")
    assert conversation.turns.count() == 1


def test_it_chains_on_the_parent_interaction(conversation):
    parent, _ = send(conversation)
    Turn.objects.filter(pk=parent.pk).update(interaction_id="int-1", status="completed")
    parent.refresh_from_db()
    child, _ = send(conversation, "next", client_id="c2", parent=parent)
    assert child.parent == parent
    assert child.previous_interaction_id == "int-1"


def test_it_refuses_to_chain_onto_a_running_turn(conversation):
    parent, _ = send(conversation)
    with pytest.raises(ValidationError, match="still being written"):
        send(conversation, "next", client_id="c2", parent=parent)
    child, created = send(conversation, "again", client_id=parent.client_id)
    assert (child, created) == (parent, False)


def test_it_refuses_a_parent_from_another_conversation(alice, conversation):
    other = services.conversation_create(owner=alice, model="local")
    parent, _ = send(other)
    with pytest.raises(ValidationError):
        send(conversation, parent=parent)


def test_it_checkpoints_in_one_update(conversation, django_assert_num_queries):
    turn, _ = send(conversation)
    steps = [{"type": "model_output", "content": [{"type": "text", "text": "Hi"}]}]
    with django_assert_num_queries(1):
        services.turn_checkpoint(
            turn_id=turn.pk, steps=steps, seq=3, last_event_id="e3",
            interaction_id="int-1", status=Turn.Status.IN_PROGRESS,
        )
    turn.refresh_from_db()
    assert (turn.steps, turn.seq, turn.last_event_id) == (steps, 3, "e3")
    assert (turn.interaction_id, turn.status) == ("int-1", Turn.Status.IN_PROGRESS)


def test_it_does_not_blank_ids_on_a_checkpoint_without_them(conversation):
    turn, _ = send(conversation)
    services.turn_checkpoint(turn_id=turn.pk, steps=[], seq=1, last_event_id="e1",
                             interaction_id="int-1")
    services.turn_checkpoint(turn_id=turn.pk, steps=[], seq=2)
    turn.refresh_from_db()
    assert (turn.last_event_id, turn.interaction_id, turn.seq) == ("e1", "int-1", 2)
    assert turn.status == Turn.Status.QUEUED


def test_it_finishes_in_one_update(conversation, django_assert_num_queries):
    turn, _ = send(conversation)
    usage = {"total_tokens": 7}
    with django_assert_num_queries(1):
        services.turn_finish(turn_id=turn.pk, status=Turn.Status.COMPLETED, steps=[], seq=9,
                             usage=usage, interaction_id="int-1")
    turn.refresh_from_db()
    assert (turn.status, turn.seq, turn.usage, turn.error) == ("completed", 9, usage, None)
    assert turn.interaction_id == "int-1"


def test_it_fails_a_turn_keeping_the_partial_reply(conversation):
    turn, _ = send(conversation)
    steps = [{"type": "model_output", "content": [{"type": "text", "text": "Half"}]}]
    error = {"code": "429", "message": "Rate limited.", "retryable": True}
    services.turn_finish(turn_id=turn.pk, status=Turn.Status.FAILED, error=error, steps=steps,
                         seq=4)
    turn.refresh_from_db()
    assert (turn.status, turn.error, turn.steps, turn.seq) == ("failed", error, steps, 4)


@pytest.mark.parametrize(
    ("status", "stored"), [("budget_exceeded", "incomplete"), ("cancelled", "cancelled")]
)
def test_it_stores_only_known_statuses(conversation, status, stored):
    turn, _ = send(conversation)
    services.turn_finish(turn_id=turn.pk, status=status, steps=[], seq=1)
    turn.refresh_from_db()
    assert turn.status == stored


def test_it_renames_a_conversation(conversation):
    services.conversation_rename(conversation=conversation, title=" New name ")
    conversation.refresh_from_db()
    assert conversation.title == "New name"


def test_it_deletes_a_conversation(conversation):
    send(conversation)
    services.conversation_delete(conversation=conversation)
    assert not Conversation.objects.exists()
    assert not Turn.objects.exists()


def test_it_updates_settings(conversation, settings):
    settings.GEMINI_API_KEY = "key"
    services.conversation_update_settings(
        conversation=conversation, model="gemini-3.5-flash", system_instruction="Be brief.",
        stateful=False, generation_settings={"temperature": 0.5, "thinking_level": "low"},
    )
    conversation.refresh_from_db()
    assert conversation.model == "gemini-3.5-flash"
    assert conversation.system_instruction == "Be brief."
    assert conversation.stateful is False
    assert conversation.generation_settings == {
        **GENERATION_SETTINGS, "temperature": 0.5, "thinking_level": "low",
    }


def test_the_offline_model_takes_no_thinking_level(conversation):
    with pytest.raises(ValidationError) as caught:
        services.conversation_update_settings(
            conversation=conversation, generation_settings={"thinking_level": "low"})
    assert "does not think" in caught.value.message_dict["thinking_level"][0]


def test_it_leaves_unmentioned_settings_alone(conversation):
    services.conversation_update_settings(conversation=conversation, system_instruction="X")
    services.conversation_update_settings(conversation=conversation, stateful=False)
    conversation.refresh_from_db()
    assert (conversation.system_instruction, conversation.stateful) == ("X", False)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"thinking_level": "extreme"}, "thinking_level"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 65537}, "max_output_tokens"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
        ({"top_k": 3}, "generation_settings"),
    ],
)
def test_it_refuses_bad_generation_settings(conversation, values, field):
    with pytest.raises(ValidationError) as excinfo:
        services.conversation_update_settings(
            conversation=conversation, generation_settings=values
        )
    assert field in excinfo.value.message_dict
    conversation.refresh_from_db()
    assert conversation.generation_settings["temperature"] is None


@pytest.mark.parametrize(
    "values",
    [
        {"temperature": 0},
        {"temperature": 2},
        {"thinking_level": "xhigh"},
        {"thinking_level": ""},
        {"max_output_tokens": 1},
        {"max_output_tokens": 65536},
        {"temperature": None, "max_output_tokens": None},
    ],
)
def test_it_accepts_settings_at_the_limits(alice, values):
    chat = services.conversation_create(owner=alice, model="gemini-3.5-flash")
    services.conversation_update_settings(conversation=chat, generation_settings=values)
    chat.refresh_from_db()
    assert values.items() <= chat.generation_settings.items()


def test_it_refuses_a_gemini_model_without_an_api_key(conversation, settings):
    settings.GEMINI_API_KEY = ""
    with pytest.raises(ValidationError) as excinfo:
        services.conversation_update_settings(conversation=conversation, model="gemini-3.5-flash")
    assert "model" in excinfo.value.message_dict


@override_settings(GEMINI_API_KEY="key")
def test_it_switches_to_a_gemini_model_with_an_api_key(conversation):
    services.conversation_update_settings(conversation=conversation, model="gemini-3.5-flash")
    conversation.refresh_from_db()
    assert conversation.model == "gemini-3.5-flash"


def test_it_interrupts_turns_a_stopped_server_left_running(conversation):
    done, _ = send(conversation, "other", client_id="c2")
    Turn.objects.filter(pk=done.pk).update(status="completed")
    running, _ = send(conversation)
    Turn.objects.filter(pk=running.pk).update(status="in_progress", steps=[{"type": "thought"}])
    assert services.turns_interrupt_running() == 1
    running.refresh_from_db()
    done.refresh_from_db()
    assert running.status == "failed" and running.error["retryable"] is True
    assert running.steps == [{"type": "thought"}]
    assert done.status == "completed"


def test_a_turn_keeps_its_model_and_the_text_to_search(conversation):
    turn, _ = services.turn_create(conversation=conversation, client_id="t", parent=None,
                                   input=[{"type": "text", "text": "Where do otters sleep?"}])
    services.turn_finish(turn_id=turn.pk, status="completed", seq=3, steps=[
        {"type": "model_output", "content": [{"type": "text", "text": "In holts."}]}])
    turn.refresh_from_db()

    assert turn.model == conversation.model
    assert turn.text == "Where do otters sleep?\nIn holts."
