"""Which backend answers a model: Gemini over HTTP, or the offline local model."""

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Protocol

from django.conf import settings

from .interactions import InteractionsClient
from .interactions.events import Event
from .interactions.local import default_engine

LOCAL_MODEL = "local-smollm2"


class Backend(Protocol):
    def stream(self, body: dict) -> AsyncIterator[Event]: ...

    async def cancel(self, interaction_id: str) -> object: ...


class BackendUnavailable(Exception):
    """The model needs a backend this server is not configured for."""


# One Gemini client (one connection pool) per event loop and configuration: httpx and
# asyncio objects must not cross loops, and tests run a loop per test.
_backends: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = (
    weakref.WeakKeyDictionary())


def backend_for(model: str) -> Backend:
    if model == LOCAL_MODEL:
        return default_engine()  # one model in memory, not tied to an event loop
    if not settings.GEMINI_API_KEY:
        raise BackendUnavailable(
            f"The model {model} needs a Gemini API key, and this server has none.")
    key = (settings.GEMINI_API_KEY, settings.GEMINI_API_BASE_URL)
    per_loop = _backends.setdefault(asyncio.get_running_loop(), {})
    if key not in per_loop:
        per_loop[key] = InteractionsClient(key[0], base_url=key[1])
    return per_loop[key]
