"""The channel layers: the embedded default's direct delivery to attached sockets, in order;
the team deployment's Redis layer letting go of closed sockets' late frames."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer

from conversations import layers
from conversations.layers import (
    ChannelBuffers,
    StreamingInMemoryChannelLayer,
    TidyRedisChannelLayer,
)
from devtools.team import REDIS, reachable
from tests.streaming import socket


async def test_it_delivers_group_messages_to_an_attached_channel_directly():
    layer = StreamingInMemoryChannelLayer()
    got = []

    async def deliver(message):
        got.append(message["text"])

    channel = await layer.new_channel()
    await layer.group_add("conv.a", channel)
    assert layer.attach(channel, deliver)
    await layer.group_send("conv.a", {"type": "turn.frame", "text": "1"})
    assert got == ["1"] and channel not in layer.channels


async def test_it_attaches_only_once_the_queue_is_empty_so_order_holds():
    layer = StreamingInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("conv.a", channel)
    await layer.group_send("conv.a", {"type": "turn.frame", "text": "1"})
    assert not layer.attach(channel, None)
    assert (await layer.receive(channel))["text"] == "1"
    assert layer.attach(channel, None)


async def test_a_failing_socket_is_detached_and_the_others_still_get_the_frame():
    layer = StreamingInMemoryChannelLayer()
    got = []

    async def broken(message):
        raise ConnectionError("gone")

    async def fine(message):
        got.append(message["text"])

    first, second = await layer.new_channel(), await layer.new_channel()
    for channel, deliver in ((first, broken), (second, fine)):
        await layer.group_add("conv.a", channel)
        layer.attach(channel, deliver)
    await layer.group_send("conv.a", {"type": "turn.frame", "text": "1"})
    await layer.group_send("conv.a", {"type": "turn.frame", "text": "2"})
    assert got == ["1", "2"]
    assert (await layer.receive(first))["text"] == "2"  # queued again once detached


# -- the team deployment's Redis layer ---------------------------------------------------

needs_redis = pytest.mark.skipif(not reachable(REDIS), reason="needs Redis on 6379")


@pytest.fixture
async def redis_layer():
    layer = TidyRedisChannelLayer(hosts=[REDIS])
    yield layer
    await layer.flush()
    await layer.close_pools()


async def two_sockets(layer) -> tuple[str, str, str]:
    """A conversation's group and the channels of two sockets of this process in it."""
    group = f"conv.{uuid.uuid4().hex}"
    first, second = await layer.new_channel(), await layer.new_channel()
    for channel in (first, second):
        await layer.group_add(group, channel)
    return group, first, second


@needs_redis
async def test_a_frame_on_its_way_to_a_closed_socket_is_not_kept(redis_layer):
    layer = redis_layer
    group, staying, leaving = await two_sockets(layer)
    # The leaving socket's consumer ends: its receive is cancelled, then it forgets.
    reader = asyncio.ensure_future(layer.receive(leaving))
    await asyncio.sleep(0.05)
    reader.cancel()
    layer.forget(leaving)
    # A frame sent before it left its groups: the staying socket's receive reads both copies.
    await layer.group_send(group, {"type": "turn.frame", "text": "1"})
    assert (await layer.receive(staying))["text"] == "1"
    assert leaving not in layer.receive_buffer and staying not in layer.receive_buffer


@needs_redis
async def test_an_open_socket_between_receives_still_gets_every_frame(redis_layer):
    layer = redis_layer
    group, first, second = await two_sockets(layer)
    for text in ("1", "2"):
        await layer.group_send(group, {"type": "turn.frame", "text": text})
    assert [(await layer.receive(first))["text"] for _ in range(2)] == ["1", "2"]
    assert [(await layer.receive(second))["text"] for _ in range(2)] == ["1", "2"]


def test_closed_channels_are_remembered_for_a_minute_only(monkeypatch):
    buffers = ChannelBuffers(capacity=10)
    now = [1000.0]
    monkeypatch.setattr(layers.time, "monotonic", lambda: now[0])
    buffers.close("specific.a!old")
    now[0] += layers.CLOSED_MEMORY + 1
    buffers.close("specific.a!new")
    assert list(buffers.closed) == ["specific.a!new"]
    buffers["specific.a!new"].put_nowait({"type": "late"})  # dropped: closed a moment ago
    buffers["specific.a!old"].put_nowait({"type": "reused?"})  # names are never reused
    assert list(buffers) == ["specific.a!old"]


@needs_redis
@pytest.mark.django_db(transaction=True)
async def test_a_socket_that_closes_forgets_its_channel(settings, alice, conversation):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "conversations.layers.TidyRedisChannelLayer",
                                           "CONFIG": {"hosts": [REDIS]}}}
    layer = get_channel_layer()
    try:
        async with socket(alice, conversation) as communicator:
            await communicator.send_json_to({"type": "sync"})  # a channel, and used
            assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        channels = list(layer.receive_buffer.closed)
        assert len(channels) == 1 and channels[0].startswith("specific.")
    finally:
        await layer.close_pools()


@needs_redis
@pytest.mark.django_db(transaction=True)
async def test_with_pubsub_a_socket_that_closes_leaves_no_channel_or_subscription(
        settings, alice, conversation):
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS]}}}
    layer = get_channel_layer()
    try:
        async with socket(alice, conversation) as communicator:
            await communicator.send_json_to({"type": "sync"})
            assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
            [shard] = layer._get_layer()._shards
            assert len(shard._subscribed_to) == 3  # its channel, its conversation, its user
        loop_layer = layer._get_layer()
        assert loop_layer.channels == {} and loop_layer.groups == {}
        assert shard._subscribed_to == set()
    finally:
        await layer.flush()
