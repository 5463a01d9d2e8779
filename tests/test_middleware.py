"""The Content-Security-Policy our pages carry."""

import pytest


def test_the_chat_page_allows_only_our_own_scripts(alice_client, conversation):
    response = alice_client.get(f"/c/{conversation.pk}/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy


def test_the_login_page_has_it_too(client):
    assert "default-src 'self'" in client.get("/accounts/login/").headers[
        "Content-Security-Policy"]


def test_the_admin_keeps_djangos_behaviour(admin_client):
    assert "Content-Security-Policy" not in admin_client.get("/admin/").headers


@pytest.mark.django_db(transaction=True)
async def test_it_works_on_the_async_path(async_client):
    response = await async_client.get("/accounts/login/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
