"""The page when the server goes away: an honest banner, retries, and the turn settled after.

These tests kill and restart daphne, so they run their own server (on its own SQLite file)
rather than conftest's session-wide one.
"""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.ports import free_port, wait_listening
from tests.browser.conftest import PASSWORD, ROOT, Site, log_in
from tests.browser.test_chat import new_chat, reply, say, wait_finished

# The longest wait between attempts is 15 s with up to 25% jitter.
RECONNECT_TIMEOUT_MS = 30_000


class Daphne:
    """A daphne process serving `site` that a test may kill and start again on its port."""

    def __init__(self, env: dict[str, str], port: int, tmp: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = tmp / "daphne.log"
        self.site = Site(url=f"http://127.0.0.1:{port}", database=tmp / "db.sqlite3")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                 "chatsite.asgi:application"], env=self.env, cwd=ROOT, stdout=log,
                stderr=subprocess.STDOUT)
        wait_listening(self.port, self.process)

    def kill(self) -> None:
        """Die the way a crash does: no close frames, no cleanup."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=self.env,
                       check=True, cwd=ROOT)


@pytest.fixture(scope="module")
def server_setup(tmp_path_factory, upstream) -> Daphne:
    """A migrated database with alice in it, as conftest's `site` has (not serving yet)."""
    tmp = tmp_path_factory.mktemp("restartable")
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3", MEDIA_ROOT=str(tmp),
               ALLOWED_HOSTS="127.0.0.1", GEMINI_API_KEY=upstream.api_key,
               GEMINI_API_BASE_URL=upstream.base_url, DJANGO_SETTINGS_MODULE="chatsite.settings")
    server = Daphne(env, free_port(), tmp)
    server.manage("migrate", "--noinput", "-v", "0")
    server.manage("shell", "-c", "from django.contrib.auth.models import User\n"
                  f"User.objects.create_user('alice', password={PASSWORD!r})\n")
    return server


@pytest.fixture
def server(server_setup: Daphne) -> Iterator[Daphne]:
    server_setup.start()
    try:
        yield server_setup
    finally:
        server_setup.stop()


@pytest.fixture
def alice(browser, server: Daphne) -> Iterator[Page]:
    page = log_in(browser, server.site, "alice")
    refused = []  # as conftest's alice_page: the Content-Security-Policy blocks nothing of ours
    page.on("console", lambda message: "Content Security Policy" in message.text
            and refused.append(message.text))
    yield page
    page.context.close()
    assert refused == []


def banner(page: Page):
    return page.locator("#connection-status")


def open_new_chat(page: Page) -> str:
    """new_chat, then wait for the first snapshot: until then the composer sends nothing."""
    conversation_id = new_chat(page)
    expect(page.locator("body")).to_have_attribute("data-connection", "online")
    return conversation_id


def test_it_shows_how_long_the_server_is_gone_and_settles_the_turn_when_it_is_back(
        alice, server, upstream):
    page = alice
    upstream.configure(delta_interval=0.05, deltas=2000)  # a reply that outlives the server
    open_new_chat(page)
    say(page, "keep talking")
    expect(reply(page)).to_contain_text("lorem")
    expect(banner(page)).to_be_hidden()

    server.kill()
    expect(banner(page)).to_contain_text(
        re.compile(r"Connection lost (just now|\d+ s ago)\. Reconnecting"))
    expect(banner(page)).to_contain_text(re.compile(r"Connection lost \d+ s ago\."))
    shown = re.search(r"lost (\d+) s ago", banner(page).inner_text())
    assert shown, banner(page).inner_text()
    # The seconds count up while we wait.
    expect(banner(page)).to_contain_text(
        re.compile(rf"Connection lost (?!{shown.group(1)} s)\d+ s ago\."))
    expect(banner(page).get_by_role("button", name="Retry now")).to_be_visible()
    expect(page.locator("#connection-said")).to_have_text(
        "Connection lost. Reconnecting automatically.")
    # The reply that was streaming does not pretend to be live.
    expect(page.locator("body")).to_have_attribute("data-connection", "offline")
    expect(reply(page).locator(".status.typing")).to_be_hidden()
    waiting = reply(page).locator(".status-line").evaluate(
        "el => getComputedStyle(el, '::after').content")
    assert "Waiting for the connection" in waiting

    server.manage("interrupt_turns")
    server.start()  # same port, same database: the page finds it by itself
    expect(banner(page)).to_be_hidden(timeout=RECONNECT_TIMEOUT_MS)
    expect(page.locator("body")).to_have_attribute("data-connection", "online")
    expect(page.locator("#connection-said")).to_have_text("Connection restored.")
    failed = reply(page).get_by_role("alert")
    expect(failed).to_contain_text("The server restarted while this reply was being written.")
    expect(reply(page).locator(".status.typing")).to_have_count(0)
    expect(page.locator(".turn.running")).to_have_count(0)
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    upstream.reset()  # a quick reply again
    failed.get_by_role("button", name="Retry", exact=True).click()
    expect(reply(page)).to_contain_text("Echo: keep talking")


def test_retry_now_reconnects_at_once(alice, server):
    page = alice
    page.clock.install()  # timers flow as usual until paused
    conversation_id = open_new_chat(page)
    say(page, "before")
    expect(reply(page)).to_contain_text("Echo: before")
    wait_finished(server.site, conversation_id)  # else it would come back still running

    # With the page's clock stopped the scheduled attempt never comes: only the button can
    # bring the connection back.
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)
    server.kill()
    expect(banner(page)).to_contain_text("Connection lost")
    server.start()
    banner(page).get_by_role("button", name="Retry now").click()
    expect(banner(page)).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-connection", "online")
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    page.clock.resume()
    say(page, "after")
    expect(reply(page)).to_contain_text("Echo: after")


def test_a_socket_that_closes_before_its_first_frame_does_not_reset_the_backoff(alice, server):
    page = alice
    open_new_chat(page)

    def open_then_close(ws) -> None:
        # The page resends its queued message as soon as the socket opens: close then,
        # before the "server" has said anything.
        ws.on_message(lambda message: ws.close())

    page.route_web_socket(re.compile(r"/ws/"), open_then_close)  # sockets from now on
    page.evaluate("""() => {
        window.seen = {opens: 0, states: []};
        const Routed = window.WebSocket;
        window.WebSocket = class extends Routed {
            constructor(...args) {
                super(...args);
                this.addEventListener("open", () => { window.seen.opens += 1; });
            }
        };
        new MutationObserver(() => window.seen.states.push(document.body.dataset.connection))
            .observe(document.body, {attributes: true, attributeFilter: ["data-connection"]});
    }""")
    server.kill()
    expect(banner(page)).to_contain_text("Connection lost")
    say(page, "queued while away")
    expect(page.locator(".turn.pending")).to_contain_text("when the connection returns")
    # 0.5, 1, 2, 4 s, then 8 s (6-10 s with jitter): the wait grows, and so does the time
    # since the connection was lost.
    expect(banner(page)).to_contain_text(
        re.compile(r"Connection lost ([5-9]|\d\d) s ago\. Reconnecting in ([6-9]|1\d) s"),
        timeout=RECONNECT_TIMEOUT_MS)
    seen = page.evaluate("window.seen")
    assert seen["opens"] >= 3
    assert "online" not in seen["states"]
