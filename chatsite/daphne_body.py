"""Keep daphne from holding a whole request body in memory.

daphne (through twisted) receives a body into a temporary file, and then twice reads all of
it into memory before the app sees a byte:
- twisted's Request parses a multipart body into `request.args`, which daphne never uses
  (it hands the app the raw body): measured, a 20 MiB upload took the process from 74 MB to
  a 320 MB peak, 100 MiB to 1.3 GB. Twisted can be told not to (`parsePOSTFormSubmission`).
- daphne puts the whole body into the app's input queue as 8 KiB messages (daphne issue
  #483). Here the queue keeps only where each chunk lies in that file, and reads it when
  the app asks for it.
Installed by asgi.py.
"""

import asyncio
from functools import partial
from typing import Any


class BodyQueue(asyncio.Queue):
    """An input queue whose `http.request` bodies stay in the request's body file."""

    def __init__(self, content: Any):
        super().__init__()
        self.content = content
        self.offset = 0

    def put_nowait(self, message: dict) -> None:
        body = message.get("body")
        if message.get("type") == "http.request" and body:
            message = {**message, "body": (self.offset, len(body))}
            self.offset += len(body)
        super().put_nowait(message)

    async def get(self) -> dict:
        message = await super().get()
        if message.get("type") == "http.request" and isinstance(message.get("body"), tuple):
            start, length = message["body"]
            try:
                self.content.seek(start)
                return {**message, "body": self.content.read(length)}
            except ValueError:  # the file closed: the client went away
                return {"type": "http.disconnect"}
        return message


def create_application(self, protocol, scope):
    """daphne's Server.create_application (4.2), with a BodyQueue for HTTP requests."""
    assert "application_instance" not in self.connections[protocol]
    content = getattr(protocol, "content", None) if scope.get("type") == "http" else None
    input_queue = BodyQueue(content) if content is not None else asyncio.Queue()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = self.application(
        scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol))
    if protocol not in self.connections:
        return None
    self.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance, loop=asyncio.get_event_loop())
    return input_queue


def install() -> None:
    from daphne.http_protocol import WebRequest
    from daphne.server import Server

    Server.create_application = create_application
    if not getattr(WebRequest, "_chatsite_unparsed", False):
        parse_init = WebRequest.__init__

        def __init__(self, *args, **kwargs):
            parse_init(self, *args, **kwargs)
            # Read by twisted only once the body is in, so setting it here is in time.
            self._parsePOSTFormSubmission = False

        WebRequest.__init__ = __init__
        WebRequest._chatsite_unparsed = True
