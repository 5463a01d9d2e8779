"""/healthz for load balancers: can this process reach its database and channel layer?

It answers before any other middleware: no host check (a load balancer asks by IP), no
HTTPS redirect, no session, no CSRF, no login. The answer is only "ok" or "unavailable";
what failed is logged, never shown.
"""

import asyncio
import logging
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponseNotAllowed, JsonResponse

from chatsite.middleware import HybridMiddleware

logger = logging.getLogger(__name__)

PATH = "/healthz"


def _query_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _database() -> None:
    # The request's own database thread, so the persistent connection is reused.
    await sync_to_async(_query_database)()


async def _channel_layer() -> None:
    """A message to a fresh channel of this process, and back: what every frame does."""
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    token = uuid.uuid4().hex
    try:
        await layer.send(channel, {"type": "healthz", "token": token})
        message = await layer.receive(channel)
    finally:  # a probe that timed out must not leave its late answer behind
        if forget := getattr(layer, "forget", None):
            forget(channel)
    if message.get("token") != token:
        raise RuntimeError(f"the channel layer returned another message: {message!r}")


async def _probe(name: str, check) -> bool:
    try:
        await asyncio.wait_for(check(), settings.HEALTHZ_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, and is logged
        logger.warning("health check: the %s is unavailable: %s", name,
                       f"no answer in {settings.HEALTHZ_TIMEOUT} s"
                       if isinstance(exc, TimeoutError) else repr(exc))
        return False
    return True


async def healthy() -> bool:
    results = await asyncio.gather(_probe("database", _database),
                                   _probe("channel layer", _channel_layer))
    return all(results)


class HealthCheckMiddleware(HybridMiddleware):
    """Answers /healthz itself; async only, so it runs on the event loop without a thread."""

    sync_capable = False

    async def ahandle(self, request):
        if request.path_info != PATH:
            return await self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        ok = await healthy()
        response = JsonResponse({"status": "ok" if ok else "unavailable"},
                                status=200 if ok else 503)
        response.headers["Cache-Control"] = "no-store"
        return response
