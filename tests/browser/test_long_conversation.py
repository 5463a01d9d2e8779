"""A long conversation opens again: daphne refuses to send a message over 1 MiB (and
closes the socket with 1011), so the snapshot comes in frames under that limit."""

import json

from playwright.sync_api import expect
from websockets.sync.client import connect

from tests.daphne import SIGNED_IN_ALICE, daphne, long_conversation

TURNS = 12
MESSAGE = "Quite a long message. " * 4500  # 99,000 characters, the most a message may have

SETUP = SIGNED_IN_ALICE + long_conversation(TURNS, MESSAGE)


def open_and_read(server, session: str, chat: str) -> list[str]:
    """Connect, read the snapshot to its last frame, and check the socket is still usable."""
    with connect(server.socket_url(chat), max_size=None,
                 additional_headers=server.headers(session)) as ws:
        frames = []
        while not frames or not json.loads(frames[-1]).get("complete", True):
            frames.append(ws.recv(timeout=10))
        ws.send(json.dumps({"type": "dance"}))
        assert json.loads(ws.recv(timeout=10))["code"] == "unknown_type"
        return frames


def test_a_conversation_of_long_messages_opens(tmp_path, browser):
    with daphne(tmp_path, SETUP) as server:
        session, chat, _ = server.printed[-3:]

        frames = open_and_read(server, session, chat)

        context = browser.new_context(base_url=f"http://127.0.0.1:{server.port}")
        context.add_cookies([{"name": "sessionid", "value": session,
                              "url": f"http://127.0.0.1:{server.port}"}])
        page = context.new_page()
        page.goto(f"/c/{chat}/")
        expect(page.locator(".msg-reply")).to_have_count(TURNS)
        expect(page.locator("#connection-status")).to_be_hidden()
        context.close()

    decoded = [json.loads(frame) for frame in frames]
    assert sum(len(frame["turns"]) for frame in decoded) == TURNS
    assert len(frames) > 1 and max(len(f.encode()) for f in frames) < 1024 * 1024
    assert [frame["type"] for frame in decoded][:2] == ["snapshot", "snapshot.part"]
