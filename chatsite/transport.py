"""A websocket whose client stops reading is dropped before it costs more than a bound.

daphne hands every frame to the connection's transport at once, and twisted keeps whatever
the kernel cannot take yet in a buffer of its own, without end: a client that stops reading
(a hostile one, or one stuck behind a dead network) would hold the server's memory forever
— until the ping timeout, and longer if it still answers pings. Twisted says when that
buffer fills (IPushProducer.pauseProducing) and when it has drained again
(resumeProducing); here each socket counts the bytes written while it is full, and past
`SOCKET_SEND_BUFFER_BYTES` the connection is aborted. The consumer then sees an ordinary
disconnect, and the page, if there is one, reconnects and gets a fresh snapshot.

daphne has no setting for its websocket protocol class, so `install()` (called by asgi.py,
before daphne builds its factories) puts ours in its place.
"""

from __future__ import annotations

import logging

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

logger = logging.getLogger(__name__)


@implementer(IPushProducer)
class Backlog:
    """What waits for a client that is not reading: bytes written while the transport's
    buffer was full."""

    def __init__(self, limit: int):
        self.limit = limit
        self.full = False
        self.waiting = 0

    def pauseProducing(self) -> None:  # noqa: N802 (twisted's names)
        self.full = True

    def resumeProducing(self) -> None:  # noqa: N802
        self.full, self.waiting = False, 0

    def stopProducing(self) -> None:  # noqa: N802
        self.full = False

    def written(self, size: int) -> bool:
        """Count a write; True once more than `limit` waits."""
        if self.full:
            self.waiting += size
        return self.waiting > self.limit


class BoundedWebSocketProtocol(WebSocketProtocol):
    backlog: Backlog | None = None

    def connectionMade(self) -> None:  # noqa: N802
        super().connectionMade()
        self.backlog = Backlog(settings.SOCKET_SEND_BUFFER_BYTES)
        try:
            self.transport.registerProducer(self.backlog, True)
        except RuntimeError:
            # The HTTP channel that upgraded the connection is still registered: it no
            # longer reads or writes this connection.
            self.transport.unregisterProducer()
            self.transport.registerProducer(self.backlog, True)

    def serverSend(self, content, binary: bool = False) -> None:  # noqa: N802
        super().serverSend(content, binary)
        if self.backlog is not None and self.backlog.written(len(content)):
            logger.warning("websocket %s: dropped, %d bytes wait for a client that does not "
                           "read (SOCKET_SEND_BUFFER_BYTES)", self.client_addr,
                           self.backlog.waiting)
            self.backlog = None
            self.transport.abortConnection()


def install() -> None:
    WebSocketFactory.protocol = BoundedWebSocketProtocol
