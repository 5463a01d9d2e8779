"""ASGI entry point: Django for HTTP, channels for websockets."""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
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

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketRequestIdMiddleware(SameOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        )),
    }
)
