"""The channel layers: the in-memory one of the embedded default, made fit for streaming,
and the team deployment's Redis layer, which lets go of the messages of closed sockets."""

import logging
import time
from collections.abc import Awaitable, Callable

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import BoundedQueue, RedisChannelLayer

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0

Deliver = Callable[[dict], Awaitable[None]]


class StreamingInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer without its per-message costs.

    The stock layer scans every channel and group for expired messages on each send
    and receive, and group_send spawns a task per member: at a few hundred streams that
    is most of the server's CPU. Here the sweep runs at most once a second, and a
    consumer may `attach` a delivery function to its channel: its messages are then
    handed over directly, without the queue, the deep copy, and the task switches of
    Channels' receive loop (messages must not be changed after sending; ours carry one
    string). A full channel is logged, not silently skipped: the per-turn sequence
    numbers let the client see the gap.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0
        self._direct: dict[str, Deliver] = {}

    def attach(self, channel: str, deliver: Deliver) -> bool:
        """Deliver this channel's messages by calling `deliver`; only once nothing is
        queued for it, so messages keep their order. Returns whether it attached."""
        queue = self.channels.get(channel)
        if queue is not None and not queue.empty():
            return False
        self._direct[channel] = deliver
        return True

    def detach(self, channel: str) -> None:
        self._direct.pop(channel, None)

    async def send(self, channel: str, message: dict) -> None:
        deliver = self._direct.get(channel)
        if deliver is None:
            await super().send(channel, message)
            return
        try:
            await deliver(message)
        except Exception:  # one broken socket must not stop the others' frames
            logger.exception("direct delivery to %s failed; detaching it", channel)
            self.detach(channel)

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        super()._clean_expired()

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                await self.send(channel, message)
            except ChannelFull:
                logger.warning("channel %s is full; a %s message was dropped", channel,
                               message.get("type"))

    async def flush(self) -> None:
        await super().flush()
        self._direct = {}


# Seconds a closed channel's late messages are still recognised and dropped: frames already
# on their way when its socket left arrive within milliseconds.
CLOSED_MEMORY = 60.0


class ChannelBuffers(dict):
    """channels_redis's `receive_buffer`: the messages this process read from Redis, by
    channel, until that channel's consumer takes them. Each process reads all its channels'
    messages through one queue, so a frame for a socket that just closed (sent before the
    socket left its groups) is read by another socket's receive and was kept here for ever
    (channels_redis #384). A closed channel's messages are now dropped."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.closed: dict[str, float] = {}  # channel -> when it closed; oldest first

    def __missing__(self, channel: str) -> BoundedQueue:
        queue = BoundedQueue(self.capacity)
        if channel not in self.closed:
            self[channel] = queue
        return queue  # a closed channel's: filled once, then dropped

    def __delitem__(self, channel: str) -> None:
        self.pop(channel, None)  # a receive that outlived forget() deletes nothing

    def close(self, channel: str) -> None:
        now = time.monotonic()
        self.pop(channel, None)
        self.closed[channel] = now
        for old, when in list(self.closed.items()):
            if when > now - CLOSED_MEMORY:
                break
            del self.closed[old]


class TidyRedisChannelLayer(RedisChannelLayer):
    """channels_redis's layer, whose consumers call `forget(channel)` once they end."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.receive_buffer = ChannelBuffers(self.capacity)

    def forget(self, channel: str) -> None:
        """Nothing will receive on `channel` again: drop its messages, now and to come."""
        self.receive_buffer.close(channel)
