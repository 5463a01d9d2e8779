"""Our middleware: a Content-Security-Policy for our pages, and a request id for logs
(of each HTTP request, and of each websocket connection).

The policy is defence in depth for untrusted model output: that output is sanitized before
it reaches the DOM, and this is the second line: no script but our own files, no remote
images, styles or frames, no plugins, no framing. The admin keeps Django's own behaviour.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.signals import request_finished

from chatsite import logs

POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # Google's search suggestion chips carry inline CSS
    # blob: the composer's thumbnails of files being attached (URLs only our scripts make).
    "img-src 'self' data: blob:",
    "media-src 'self' data:",
    "connect-src 'self'",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def _protect(request, response):
    if not request.path.startswith("/admin/"):
        response.headers.setdefault("Content-Security-Policy", POLICY)
    return response


class HybridMiddleware:
    """A middleware that works sync and async, so it adds no thread hop under daphne.

    Subclasses implement `handle` and `ahandle` (the same logic, sync and async).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.ahandle(request)
        return self.handle(request)

    def handle(self, request):
        raise NotImplementedError

    async def ahandle(self, request):
        raise NotImplementedError


class ContentSecurityPolicyMiddleware(HybridMiddleware):
    def handle(self, request):
        return _protect(request, self.get_response(request))

    async def ahandle(self, request):
        return _protect(request, await self.get_response(request))


class RequestIdMiddleware(HybridMiddleware):
    """Give each request an id (a sane incoming X-Request-ID, else a fresh one) that its
    log lines carry and its response echoes, so a proxy's log and ours can be joined.

    The id is unbound when the response is closed, not on the way out: Django logs 4xx
    and 5xx responses after the middleware has returned.
    """

    def handle(self, request):
        self._bind(request)
        return self._echo(self.get_response(request))

    async def ahandle(self, request):
        self._bind(request)
        return self._echo(await self.get_response(request))

    @staticmethod
    def _bind(request) -> None:
        request.request_id = logs.request_id_from(request.headers.get("X-Request-ID"))
        logs.request_id.set(request.request_id)

    @staticmethod
    def _echo(response):
        response.headers["X-Request-ID"] = logs.request_id.get()
        return response


def _unbind_request_id(**kwargs) -> None:
    # Under daphne each request is a task of its own and its id ends with it; a WSGI
    # thread (or the test client's) serves the next request in the same context.
    logs.request_id.set(None)


request_finished.connect(_unbind_request_id, dispatch_uid="chatsite.unbind_request_id")


class WebsocketRequestIdMiddleware:
    """ASGI middleware giving each websocket connection a request id, as
    RequestIdMiddleware does each request: the handshake's sane X-Request-ID, else a fresh
    one. The consumer's log lines carry it, and so do the turns it starts (their tasks
    copy its context). It is also `scope["request_id"]`.

    daphne sends no headers of ours in the handshake's answer, so it is not echoed: a
    proxy joins its log line of the upgrade with ours through the id it sent.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            # Each connection is a task of its own: the id lives and ends with it.
            header = dict(scope.get("headers") or ()).get(b"x-request-id", b"")
            scope = dict(scope, request_id=logs.request_id_from(header.decode("latin-1")))
            logs.request_id.set(scope["request_id"])
        return await self.app(scope, receive, send)
