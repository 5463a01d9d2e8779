"""Signing in: throttled wrong passwords (django-axes), password reset only with email."""

import importlib
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.urls import clear_url_caches
from django.utils import timezone

from chatsite import urls as root_urls
from tests.django_fixtures import PASSWORD

LOGIN = "/accounts/login/"


def attempt(client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def test_wrong_passwords_in_a_row_pause_signing_in_with_a_message(client, alice, limit):
    for _ in range(limit - 1):
        assert attempt(client, "alice", "wrong").status_code == 200  # the form, with its error
    response = attempt(client, "alice", "wrong")

    assert response.status_code == 429
    text = response.content.decode()
    assert "Too many wrong passwords" in text and "15 minutes" in text
    # Even the right password waits now.
    assert attempt(client, "alice", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_lockout_holds_that_user_from_that_address_only(client, alice, bob, limit):
    for _ in range(limit):
        attempt(client, "alice", "wrong")

    assert attempt(client, "bob", PASSWORD).status_code == 302  # someone else
    client.logout()
    assert attempt(client, "alice", PASSWORD, ip="10.0.0.2").status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, alice, limit):
    for _ in range(limit):
        attempt(client, "alice", "wrong")
    assert attempt(client, "alice", PASSWORD).status_code == 429
    # 15 minutes later
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert attempt(client, "alice", PASSWORD).status_code == 302


def test_signing_in_clears_the_failures(client, alice, limit):
    for _ in range(limit - 1):
        attempt(client, "alice", "wrong")
    assert attempt(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(limit - 1):
        attempt(client, "alice", "wrong")

    assert attempt(client, "alice", PASSWORD).status_code == 302


@pytest.fixture
def reload_urls(settings):
    """Routes read PASSWORD_RESET_ENABLED when imported: load them again for a test."""
    def reload(enabled: bool):
        settings.PASSWORD_RESET_ENABLED = enabled
        importlib.reload(root_urls)
        clear_url_caches()

    yield reload
    reload(False)


def test_without_email_there_is_no_password_reset(client, db, reload_urls):
    reload_urls(False)

    assert client.get("/accounts/password_reset/").status_code == 404
    assert "Forgot your password" not in client.get(LOGIN).content.decode()


def test_with_email_a_reset_link_is_mailed(client, alice, reload_urls, settings):
    reload_urls(True)
    alice.email = "alice@example.org"
    alice.save()

    assert "Forgot your password" in client.get(LOGIN).content.decode()
    response = client.post("/accounts/password_reset/", {"email": "alice@example.org"})

    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
