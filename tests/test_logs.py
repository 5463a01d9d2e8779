"""Structured logs: LOG_FORMAT=json lines, request ids, turn ids."""

import asyncio
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatsite import logs
from chatsite.asgi import application
from chatsite.logs import ContextFilter, JsonFormatter
from conversations import services
from tests.streaming import frames_until_done, send
from tests.test_asgi import headers
from tests.test_healthz import daphne
from tests.test_settings import run


def record(message: str = "hello %s", *args, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.getLogger("chatsite.test").makeRecord(
        "chatsite.test", logging.WARNING, __file__, 1, message, args or ("world",), exc_info,
        extra=extra)
    ContextFilter().filter(made)
    return made


def test_a_line_is_one_json_object_with_the_essentials():
    line = JsonFormatter().format(record())
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["level"] == "WARNING" and entry["logger"] == "chatsite.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert "request_id" not in entry and "exception" not in entry  # nothing unknown is made up


def test_an_exception_and_extras_are_kept_even_unserializable_ones():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        made = record(exc_info=sys.exc_info(), status_code=500, request=object())
    entry = json.loads(JsonFormatter().format(made))
    assert "ValueError: bad\nthing" in entry["exception"] and "Traceback" in entry["exception"]
    assert entry["status_code"] == 500 and entry["request"].startswith("<object")


def test_the_response_echoes_a_sane_incoming_request_id(db):
    response = Client().get("/accounts/login/", HTTP_X_REQUEST_ID="4f1c0de2a9b34e7f")
    assert response.headers["X-Request-ID"] == "4f1c0de2a9b34e7f"
    assert logs.request_id.get() is None  # unbound once the response is closed


@pytest.mark.parametrize("incoming", [None, "", "two words", "x" * 129, 'a"}\n{"level":"x'])
def test_a_missing_or_insane_request_id_is_replaced(db, incoming):
    headers = {} if incoming is None else {"HTTP_X_REQUEST_ID": incoming}
    ids = {Client().get("/accounts/login/", **headers).headers["X-Request-ID"] for _ in "ab"}
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_an_unknown_log_format_is_refused(tmp_path):
    result = run(tmp_path, DEBUG="1", LOG_FORMAT="xml")
    assert result.returncode != 0 and "LOG_FORMAT must be plain or json" in result.stderr


def test_a_requests_log_line_from_daphne_is_json_with_its_request_id(tmp_path):
    with daphne(tmp_path, LOG_FORMAT="json") as (port, log):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/no-such-page",
                                         headers={"X-Request-ID": "lb-7f3a9c01"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=30)
        assert error.value.code == 404 and error.value.headers["X-Request-ID"] == "lb-7f3a9c01"
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line, not only ours
    [entry] = [e for e in entries if e["message"] == "Not Found: /no-such-page"]
    assert entry["request_id"] == "lb-7f3a9c01"
    assert entry["logger"] == "django.request" and entry["status_code"] == 404


class JsonLines(logging.Handler):
    """The app's log lines as LOG_FORMAT=json writes them, parsed, while it is attached."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict] = []
        self.addFilter(ContextFilter())
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))


@contextmanager
def json_lines() -> Iterator[list[dict]]:
    handler = JsonLines()
    logging.getLogger("conversations").addHandler(handler)
    try:
        yield handler.entries
    finally:
        logging.getLogger("conversations").removeHandler(handler)


@pytest.mark.django_db(transaction=True)
async def test_a_turns_log_lines_carry_its_turn_and_conversation(alice, gemini):
    from conversations import runner

    with json_lines() as entries:
        chat = await asyncio.to_thread(services.conversation_create, owner=alice,
                                       model="gemini-3.5-flash")
        turn, _ = await asyncio.to_thread(services.turn_create, conversation=chat,
                                          client_id="c", parent=None,
                                          input=[{"type": "text", "text": "hi"}])
        conversation_id = str(chat.pk)
        await chat.adelete()  # the run logs that the conversation is gone
        await runner.start(turn).task
    [entry] = [e for e in entries if "conversation is gone" in e["message"]]
    assert entry["turn_id"] == str(turn.pk) and entry["conversation_id"] == conversation_id
    assert entry["logger"] == "conversations.runner" and entry["level"] == "INFO"


async def socket_with_id(client, chat, request_id: str | None) -> WebsocketCommunicator:
    """A socket through the deployed stack, its snapshot read."""
    extra = {} if request_id is None else {"x_request_id": request_id}
    communicator = WebsocketCommunicator(
        application, f"/ws/conversations/{chat.pk}/",
        headers=headers(client, "http://localhost", **extra))
    assert (await communicator.connect(timeout=5))[0]
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    return communicator


async def flood(ws) -> None:
    """Send frames until one is dropped past SOCKET_FRAME_BURST (which the socket logs)."""
    for _ in range(10):
        await send(ws, type="dance")
        if (await ws.receive_json_from(timeout=5))["code"] == "rate_limited":
            return
    raise AssertionError("no frame was dropped")


@pytest.fixture
def gemini_chat(alice, gemini, settings):
    settings.SOCKET_FRAMES_PER_SECOND, settings.SOCKET_FRAME_BURST = 1, 2
    return services.conversation_create(owner=alice, model="gemini-3.5-flash")


def dropped(entries: list[dict]) -> list[dict]:
    return [e for e in entries if "SOCKET_FRAMES_PER_SECOND" in e["message"]]


@pytest.mark.django_db(transaction=True)
async def test_a_sockets_log_lines_and_its_turns_carry_its_request_id(alice_client,
                                                                      gemini_chat):
    from conversations import runner

    chat = gemini_chat
    with json_lines() as entries:
        ws = await socket_with_id(alice_client, chat, "lb-ws-42")
        try:
            await send(ws, type="send", client_id="c1", text="hello", parent_id=None)
            turn_id = (await ws.receive_json_from(timeout=5))["turn"]["id"]
            await frames_until_done(ws)
            await flood(ws)
            # The hub (started by this socket's turn) serves every turn: its lines are
            # none of this socket's. A message it cannot handle makes it log one.
            await get_channel_layer().send(await runner.hub_channel(), {"type": "turn.stop"})
            for _ in range(500):
                if any("runner hub" in e["message"] for e in entries):
                    break
                await asyncio.sleep(0.01)
        finally:
            await ws.disconnect()
    [ended] = [e for e in entries if e["message"] == f"turn {turn_id} completed"]
    assert ended["request_id"] == "lb-ws-42"
    assert ended["turn_id"] == turn_id and ended["conversation_id"] == str(chat.pk)
    [line] = dropped(entries)
    assert line["request_id"] == "lb-ws-42" and line["conversation_id"] == str(chat.pk)
    assert "turn_id" not in line
    [hub] = [e for e in entries if "runner hub" in e["message"]]
    assert not {"request_id", "turn_id", "conversation_id"} & set(hub)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("incoming", [None, "two words", 'a"}\n{"level":"x'])
async def test_a_socket_without_a_sane_request_id_gets_a_fresh_one(alice_client, gemini_chat,
                                                                   incoming):
    with json_lines() as entries:
        for _ in "ab":
            ws = await socket_with_id(alice_client, gemini_chat, incoming)
            try:
                await flood(ws)
            finally:
                await ws.disconnect()
    ids = {e["request_id"] for e in dropped(entries)}
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
