"""The embedded default's channel layer: direct delivery to attached sockets, in order."""

from conversations.layers import StreamingInMemoryChannelLayer


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
