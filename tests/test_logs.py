"""Structured logs: LOG_FORMAT=json lines, request ids, turn ids."""

import asyncio
import io
import json
import logging
import re
import urllib.error
import urllib.request

import pytest
from django.test import Client

from chatsite import logs
from chatsite.logs import ContextFilter, JsonFormatter
from conversations import services
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


@pytest.mark.django_db(transaction=True)
async def test_a_turns_log_lines_carry_its_turn_and_conversation(alice, settings,
                                                                 fake_upstream):
    from conversations import runner

    settings.GEMINI_API_KEY = fake_upstream.api_key
    settings.GEMINI_API_BASE_URL = fake_upstream.base_url
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logging.getLogger("conversations").addHandler(handler)
    try:
        chat = await asyncio.to_thread(services.conversation_create, owner=alice,
                                       model="gemini-3.5-flash")
        turn, _ = await asyncio.to_thread(services.turn_create, conversation=chat,
                                          client_id="c", parent=None,
                                          input=[{"type": "text", "text": "hi"}])
        conversation_id = str(chat.pk)
        await chat.adelete()  # the run logs that the conversation is gone
        await runner.start(turn).task
    finally:
        logging.getLogger("conversations").removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    [entry] = [e for e in entries if "conversation is gone" in e["message"]]
    assert entry["turn_id"] == str(turn.pk) and entry["conversation_id"] == conversation_id
    assert entry["logger"] == "conversations.runner" and entry["level"] == "INFO"
