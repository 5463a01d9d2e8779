"""Shared fixtures: the fake upstream (a real loopback fake of the Gemini Interactions API)
and named users (alice owns things, bob must get 404 for them)."""

from tests.django_fixtures import alice, alice_client, bob, conversation  # noqa: F401
from tests.fake_upstream_fixture import fake_upstream, gemini  # noqa: F401


def pytest_terminal_summary(terminalreporter):
    from tests import engine_report

    if lines := engine_report.lines():
        terminalreporter.section("offline model engine")
        for line in lines:
            terminalreporter.write_line(line)
