"""A client that stops reading is dropped once SOCKET_SEND_BUFFER_BYTES wait for it; one
that reads gets everything (chatsite/transport.py, through a real daphne)."""

import base64
import json
import os
import socket
import struct
import time
from pathlib import Path

from tests.daphne import SIGNED_IN_ALICE, daphne, long_conversation

TURNS = 12
MESSAGE = "Quite a long message. " * 4500  # 99,000 characters: each history page is ~1 MB
LIMIT = 4 * 1024 * 1024

SETUP = SIGNED_IN_ALICE + long_conversation(TURNS, MESSAGE)


class RawSocket:
    """A websocket client that reads only when told to: the server cannot tell it apart from
    a browser until it stops reading."""

    def __init__(self, server, session: str, chat: str):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # little kernel slack
        self.sock.connect(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET /ws/conversations/{chat}/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{server.port}\r\n"
            f"Cookie: sessionid={session}\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, frame: dict) -> None:
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionResetError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def recv(self) -> dict:
        first, second = self._read(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read(8))[0]
        payload = self._read(size)
        assert first == 0x81, f"not a text frame: {first:#x}"
        return json.loads(payload)

    def read_all(self, kind: str) -> dict:
        """Read frames up to the last one of a `kind` answer (snapshot, history)."""
        while True:
            frame = self.recv()
            if frame["type"].split(".")[0] == kind and frame.get("complete"):
                return frame


def rss(pid: int) -> int:
    status = (Path("/proc") / str(pid) / "status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmRSS:"))) * 1024


def test_a_client_that_stops_reading_is_dropped(tmp_path):
    with daphne(tmp_path, SETUP, SOCKET_SEND_BUFFER_BYTES=str(LIMIT)) as server:
        session, chat, leaf = server.printed[-3:]
        client = RawSocket(server, session, chat)
        before = rss(server.process.pid)
        # Each history page is ~1 MB; the client reads none of them.
        dropped, deadline, asked = False, time.monotonic() + 60, 0
        while time.monotonic() < deadline and not dropped:
            try:
                client.send({"type": "history", "turn_id": leaf})
                asked += 1
                time.sleep(0.25)  # within the frame rate limit: each one is answered
            except OSError:
                dropped = True
        grown = rss(server.process.pid) - before
        log = (tmp_path / "daphne.log").read_text()

    assert dropped, f"still connected after {asked} pages of ~1 MB unread"
    assert "does not read" in log
    # Not before LIMIT waited: the snapshot and the pages asked for (~1.1 MB each).
    assert (asked + 1) * 1_100_000 >= LIMIT
    assert grown < 8 * LIMIT, f"daphne grew by {grown:,} bytes"


def test_a_client_that_reads_gets_everything(tmp_path):
    with daphne(tmp_path, SETUP, SOCKET_SEND_BUFFER_BYTES=str(LIMIT)) as server:
        session, chat, leaf = server.printed[-3:]
        client = RawSocket(server, session, chat)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        assert len(client.read_all("snapshot")["turns"]) >= 1
        pages = 0
        for _ in range(12):  # 12 MB in all, three times the limit
            client.send({"type": "history", "turn_id": leaf})
            client.read_all("history")
            pages += 1
            time.sleep(0.2)
        log = (tmp_path / "daphne.log").read_text()

    assert pages == 12
    assert "does not read" not in log
