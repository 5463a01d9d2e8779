"""ASGI entry point: Django for HTTP, channels for websockets."""

import os

from channels.auth import AuthMiddleware
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Set up Django (apps, models) before importing anything that touches the ORM.
django_asgi_app = get_asgi_application()

from chatsite import daphne_body, transport  # noqa: E402
from chatsite.middleware import WebsocketRequestIdMiddleware  # noqa: E402
from chatsite.origin import SameOriginValidator  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402

# Two bounds daphne lacks (each module says why):
daphne_body.install()  # request bodies stay on disk until Django reads them
transport.install()  # a socket whose client stops reading is dropped



class SocketSessionMiddleware(SessionMiddleware):
    """Channels' SessionMiddleware without its wrapper around `send`: the wrapper saves the
    session and sets its cookie on an HTTP response, which a websocket never sends, yet it
    inspects the session on every frame sent (2% of the server's CPU when streaming)."""

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketRequestIdMiddleware(SameOriginValidator(
            CookieMiddleware(SocketSessionMiddleware(AuthMiddleware(
                URLRouter(websocket_urlpatterns))))
        )),
    }
)
