"""Pytest fixture: a fresh fake upstream per test, shut down cleanly afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.fake_upstream.server import FakeUpstream


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstream]:
    """A running FakeUpstream on 127.0.0.1 with an ephemeral port (`.base_url`, `.api_key`)."""
    server = FakeUpstream().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gemini(settings, fake_upstream) -> FakeUpstream:
    """The fake upstream, as the site's Gemini (key and base URL set)."""
    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    return fake_upstream
