"""The in-memory channel layer of the embedded default, made fit for streaming."""

import logging
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0


class StreamingInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer without its per-message costs.

    The stock layer scans every channel and group for expired messages on each
    send and receive, and group_send spawns a task per member: at a few hundred
    streams that is most of the server's CPU. Here the sweep runs at most once a
    second and group_send delivers directly. A full channel is logged, not
    silently skipped: the per-turn sequence numbers let the client see the gap.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0

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
