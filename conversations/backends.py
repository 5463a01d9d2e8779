"""Which backend answers a model: Gemini over HTTP, or the offline local model."""

import asyncio
import atexit
import threading
import weakref
from collections.abc import AsyncIterator, Hashable
from typing import Protocol

from django.conf import settings

from . import catalogue
from .interactions import InteractionsClient
from .interactions.events import Event
from .local import LocalEngine


class Backend(Protocol):
    def stream(self, body: dict) -> AsyncIterator[Event]: ...

    async def cancel(self, interaction_id: str) -> object: ...


class BackendUnavailable(Exception):
    """The model needs a backend this server is not configured for."""


# One Gemini client (one connection pool) per event loop and configuration: httpx and
# asyncio objects must not cross loops, and tests run a loop per test.
_backends: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = (
    weakref.WeakKeyDictionary())


def backend_for(model: str, *, user: Hashable = "") -> Backend:
    """The backend for `model`, on behalf of `user` (the local model's queue is fair by user)."""
    if catalogue.model_info(model).local:
        return _LocalBackend(local_engine(), user)
    if not settings.GEMINI_API_KEY:
        raise BackendUnavailable(
            f"The model {model} needs a Gemini API key, and this server has none.")
    key = (settings.GEMINI_API_KEY, settings.GEMINI_API_BASE_URL)
    per_loop = _backends.setdefault(asyncio.get_running_loop(), {})
    if key not in per_loop:
        per_loop[key] = InteractionsClient(key[0], base_url=key[1])
    return per_loop[key]


class _LocalBackend:
    def __init__(self, engine: LocalEngine, user: Hashable) -> None:
        self.engine = engine
        self.user = user

    def stream(self, body: dict) -> AsyncIterator[Event]:
        return self.engine.stream(body, user=self.user)

    async def cancel(self, interaction_id: str) -> bool:
        return await self.engine.cancel(interaction_id)


_engine: LocalEngine | None = None
_engine_lock = threading.Lock()


def local_engine() -> LocalEngine:
    """This process's offline model: one worker process, one queue, for every conversation.
    It is not tied to an event loop, and is stopped (its process too) when the server exits."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = LocalEngine(
                catalogue.local_model_path(),
                n_ctx=settings.LOCAL_MODEL_CONTEXT,
                n_threads=settings.LOCAL_MODEL_THREADS or None,
                stall_timeout=settings.LOCAL_MODEL_TIMEOUT,
                load_timeout=settings.LOCAL_MODEL_LOAD_TIMEOUT,
                queue_limit=settings.LOCAL_MODEL_QUEUE_LIMIT,
                queue_per_user=settings.LOCAL_MODEL_QUEUE_PER_USER,
            )
            atexit.register(_engine.close)
        return _engine
