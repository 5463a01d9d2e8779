"""Browser tests: the real app under daphne, Debian's chromium, the fake upstream.

The server runs in a subprocess on its own SQLite file, so these tests reach its data
through the browser, the fake upstream's request log, and that database file.
"""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from devtools.fake_upstream.server import FakeUpstream
from tests.daphne import daphne

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
PASSWORD = "correct horse battery staple"

# This machine has two cores and CI shares them with the server and the model: be patient.
expect.set_options(timeout=15_000)

if not Path(CHROMIUM).exists():  # `make test` installs it; say so loudly if it is missing
    pytest.exit(f"{CHROMIUM} is missing: `make test` installs it (Debian's chromium)",
                returncode=3)


@dataclass
class Site:
    url: str
    database: Path

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.database) as db:
            return db.execute(sql, params).fetchall()


@pytest.fixture(scope="session")
def upstream():
    with FakeUpstream() as server:
        yield server


@pytest.fixture(scope="session")
def site(tmp_path_factory, upstream):
    tmp = tmp_path_factory.mktemp("site")
    create = ("from django.contrib.auth.models import User\n"
              f"User.objects.create_user('alice', password={PASSWORD!r})\n"
              f"User.objects.create_user('bob', password={PASSWORD!r})\n")
    with daphne(tmp, create, GEMINI_API_KEY=upstream.api_key,
                GEMINI_API_BASE_URL=upstream.base_url) as server:
        yield Site(url=f"http://127.0.0.1:{server.port}", database=tmp / "db.sqlite3")


# Playwright's sync API keeps an event loop running in this thread while it is open:
# close it after each module, so the async tests that follow can run their own loops.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def fresh_upstream(upstream):
    upstream.reset()
    yield upstream
    upstream.reset()


def log_in(browser, site: Site, username: str, **context_options):
    context = browser.new_context(base_url=site.url, **context_options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page


@pytest.fixture
def alice_page(browser, site):
    page = log_in(browser, site, "alice")
    refused = []  # our Content-Security-Policy must never block the page's own work
    page.on("console", lambda message: "Content Security Policy" in message.text
            and refused.append(message.text))
    yield page
    page.context.close()
    assert refused == []


@pytest.fixture
def bob_page(browser, site):
    page = log_in(browser, site, "bob")
    yield page
    page.context.close()
