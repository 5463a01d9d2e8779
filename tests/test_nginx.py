"""deploy/nginx/chatsite.conf in a real nginx, in front of a real daphne: TLS, the redirect,
the forwarded scheme and request id, and a reply streamed over a websocket through it.

Only what Docker provides is swapped: the listening ports, the certificate (a self-signed
one made here), the log path, and `web:8000` (Docker's DNS name) for daphne's address.
"""

import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
import websockets

from devtools.fake_upstream.server import FakeUpstream
from devtools.ports import free_port, wait_listening
from tests.daphne import SIGNED_IN_ALICE, daphne
from tests.streaming import replay, text_of
from tests.test_team import start_turn, until_done

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")

MAIN = """daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{}}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""
A_GEMINI_CONVERSATION = SIGNED_IN_ALICE + """
print(services.conversation_create(owner=user, model="gemini-3.5-flash").pk)
"""


def site_conf(directory: Path, http: int, https: int, app: int) -> str:
    conf = (ROOT / "deploy" / "nginx" / "chatsite.conf").read_text()
    for old, new in (("listen 80;", f"listen 127.0.0.1:{http};"),
                     ("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;"),
                     ("/etc/nginx/certs", str(directory)),
                     ("/var/log/nginx", str(directory)),
                     ("http://web:8000", f"http://127.0.0.1:{app}")):
        assert old in conf, old
        conf = conf.replace(old, new)
    return conf


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = tmp_path_factory.mktemp("nginx")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", directory / "privkey.pem",
                    "-out", directory / "fullchain.pem"], check=True, capture_output=True)
    http, https = free_port(), free_port()
    with FakeUpstream() as upstream, daphne(
            tmp_path_factory.mktemp("app"), A_GEMINI_CONVERSATION, USE_HTTPS="1",
            GEMINI_API_KEY=upstream.api_key, GEMINI_API_BASE_URL=upstream.base_url) as app:
        (directory / "site.conf").write_text(site_conf(directory, http, https, app.port))
        (directory / "nginx.conf").write_text(MAIN.format(dir=directory))
        command = [NGINX, "-c", str(directory / "nginx.conf"), "-p", str(directory),
                   "-e", str(directory / "error.log")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        process = subprocess.Popen(command)
        try:
            wait_listening(https, process)
            yield {"http": http, "https": https, "dir": directory, "upstream": upstream,
                   "session": app.printed[-2], "conversation": app.printed[-1]}
        finally:
            process.terminate()
            process.wait(10)


def tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own self-signed certificate
    return context


def fetch(url: str) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive) and body; redirects are not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=tls()))
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_plain_http_is_redirected_to_https(site):
    status, headers, _ = fetch(f"http://127.0.0.1:{site['http']}/c/new?x=1")
    assert status == 301 and headers["Location"] == "https://127.0.0.1/c/new?x=1"


def test_pages_are_served_over_https_without_a_redirect_loop(site):
    # The app redirects plain HTTP itself (SECURE_SSL_REDIRECT): only X-Forwarded-Proto
    # tells it this request came over TLS.
    status, headers, body = fetch(f"https://127.0.0.1:{site['https']}/accounts/login/")
    assert status == 200 and b"<form" in body
    assert "Strict-Transport-Security" not in headers  # SECURE_HSTS_SECONDS is 0 here


def test_the_health_check_passes_and_shares_nginxs_request_id(site):
    status, headers, body = fetch(f"https://127.0.0.1:{site['https']}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    request_id = headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, kept by the app
    # nginx writes its access log line after the response is sent: wait for it.
    deadline = time.monotonic() + 10
    line = f"request_id={request_id}"
    while line not in (log := (site["dir"] / "access.log").read_text()):
        assert time.monotonic() < deadline, f"{line} not in nginx's access log: {log}"
        time.sleep(0.05)


async def test_a_reply_streams_over_a_websocket_through_nginx(site):
    site["upstream"].configure(delta_interval=0.02, deltas=40)
    url = f"wss://127.0.0.1:{site['https']}/ws/conversations/{site['conversation']}/"
    headers = {"Cookie": f"sessionid={site['session']}",
               "Origin": f"https://127.0.0.1:{site['https']}"}
    async with websockets.connect(url, ssl=tls(), additional_headers=headers) as ws:
        snapshot = json.loads(await ws.recv())
        assert snapshot["type"] == "snapshot"
        turn_id = await start_turn(ws, "through the proxy")
        frames = await until_done(ws)
    assert frames[-1]["status"] == "completed"
    assert len(text_of(replay(frames, turn_id)[0]).split()) == 40
    # Streamed, not delivered at the end: the text came in several frames.
    assert sum(1 for frame in frames if any(op[0] == "text" for op in frame.get("ops", ()))) > 1
