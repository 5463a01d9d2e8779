"""The process-wide checkpoint writer never lets a checkpoint undo a turn's final write."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversations import checkpoints, services
from conversations.models import Turn

pytestmark = pytest.mark.django_db(transaction=True)

RUNNING = {"steps": [{"type": "model_output", "content": []}], "seq": 3,
           "status": "in_progress"}


async def make_turn(conversation, client_id: str) -> Turn:
    turn, _ = await sync_to_async(services.turn_create)(
        conversation=conversation, client_id=client_id,
        input=[{"type": "text", "text": "hi"}], parent=None)
    return turn


async def finish(turn: Turn) -> None:
    await sync_to_async(services.turn_finish)(turn_id=turn.pk, status="completed",
                                              steps=[], seq=9)


async def test_it_writes_every_pending_turn_in_one_batch(alice, conversation):
    other = await sync_to_async(services.conversation_create)(owner=alice, model="local")
    first, second = await make_turn(conversation, "a"), await make_turn(other, "b")
    writer = checkpoints.writer()
    writer.put(str(first.pk), RUNNING)
    writer.put(str(second.pk), RUNNING)
    await writer._task
    for turn in (first, second):
        await turn.arefresh_from_db()
        assert (turn.status, turn.seq) == ("in_progress", 3)


async def test_a_queued_checkpoint_is_dropped_when_the_turn_settles(conversation):
    turn = await make_turn(conversation, "a")
    writer = checkpoints.writer()
    writer.put(str(turn.pk), RUNNING)
    await writer.settle(str(turn.pk))
    await finish(turn)
    await asyncio.sleep(0.1)
    await turn.arefresh_from_db()
    assert (turn.status, turn.seq) == ("completed", 9)

