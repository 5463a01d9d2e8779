"""A big upload through the real daphne: stored whole, and never held in the server's memory
(chatsite/daphne_body.py)."""

import hashlib
import http.client
import os
import sqlite3

from tests.daphne import SIGNED_IN_ALICE, daphne

CSRF = "a" * 32  # the CSRF cookie and header just have to agree
# Long, so that random bytes do not contain it (Django looks for "--" + boundary anywhere).
BOUNDARY = b"chatsite-test-boundary-7c1e0f"
HEAD = b"\0\0\0\x18ftypisom" + b"\0" * 16  # an MP4, by its first bytes
MiB = 1024**2


def peak_rss(pid: int) -> int:
    """The process's largest resident size so far, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def post_file(port: int, session_key: str, name: str, megabytes: int, head: bytes = HEAD):
    """POST /files/ a multipart body written a MiB at a time; the response and the sha256."""
    opening = (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; '
               b'filename="' + name.encode() + b'"\r\nContent-Type: application/octet-stream'
               b"\r\n\r\n")
    closing = b"\r\n--" + BOUNDARY + b"--\r\n"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.putrequest("POST", "/files/")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY.decode()}")
    conn.putheader("Content-Length", str(len(opening) + len(head) + megabytes * MiB
                                         + len(closing)))
    conn.putheader("Cookie", f"sessionid={session_key}; csrftoken={CSRF}")
    conn.putheader("X-CSRFToken", CSRF)
    conn.endheaders()
    digest = hashlib.sha256(head)
    conn.send(opening + head)
    for _ in range(megabytes):
        chunk = os.urandom(MiB)
        digest.update(chunk)
        conn.send(chunk)
    conn.send(closing)
    response = conn.getresponse()
    return response.status, response.read(), digest.hexdigest()


def test_a_big_upload_through_daphne_stays_out_of_memory(tmp_path):
    with daphne(tmp_path, SIGNED_IN_ALICE) as server:
        session_key = server.printed[-1]
        # Warm up: the first request loads the app's code, which is not the upload's cost.
        post_file(server.port, session_key, "small.mp4", 1)
        before = peak_rss(server.process.pid)
        status, body, sha = post_file(server.port, session_key, "big.mp4", 60)
        grown = peak_rss(server.process.pid) - before
    assert status == 201, body
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        size, mime = db.execute("SELECT size, mime_type FROM conversations_attachment WHERE "
                                "sha256 = ?", (sha,)).fetchone()
    assert (size, mime) == (60 * MiB + len(HEAD), "video/mp4")
    # Unpatched, twisted's form parsing and daphne's queue took ~13 times the body.
    assert grown < 20 * MiB, f"the server grew by {grown / MiB:.0f} MiB for a 60 MiB upload"
