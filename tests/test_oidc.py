"""Single sign-on through a real OpenID Connect provider on loopback (tests/oidc_provider.py):
the whole authorization code flow, with PKCE, an RS256 ID token checked against the JWKS."""

import importlib
from urllib.parse import urlsplit

import httpx
import pytest
from django.urls import clear_url_caches

from chatsite import urls as root_urls
from tests.django_fixtures import PASSWORD
from tests.oidc_provider import Provider

VERIFIED = {"sub": "g-123", "email": "carol@example.org", "email_verified": True,
            "given_name": "Carol", "family_name": "Jones"}


@pytest.fixture
def provider(settings):
    provider = Provider()
    for name, value in provider.settings().items():
        setattr(settings, name, value)
    settings.OIDC_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS,
                                        "chatsite.oidc.Backend"]
    importlib.reload(root_urls)
    clear_url_caches()
    yield provider
    provider.close()
    settings.OIDC_ENABLED = False
    importlib.reload(root_urls)
    clear_url_caches()


def sign_in(client, provider, claims: dict) -> str:
    """Click "Sign in with …", let the provider answer, follow it back: where we land."""
    provider.claims = claims
    start = client.get("/accounts/login/")
    assert "Sign in with single sign-on" in start.content.decode()
    to_provider = client.get("/oidc/authenticate/")
    assert to_provider.status_code == 302
    back = httpx.get(to_provider["Location"], follow_redirects=False)
    callback = urlsplit(back.headers["Location"])
    response = client.get(f"{callback.path}?{callback.query}")
    assert response.status_code == 302
    return response["Location"]


def signed_in_as(client):
    from django.contrib.auth import get_user_model

    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id) if user_id else None


def test_a_new_person_signs_in_and_gets_an_account(client, db, provider):
    assert sign_in(client, provider, VERIFIED) == "/"

    user = signed_in_as(client)
    assert (user.username, user.email, user.first_name) == (
        "carol@example.org", "carol@example.org", "Carol")
    assert not user.has_usable_password()
    assert provider.tokens_issued == 1


def test_an_existing_account_with_that_email_is_the_one_signed_in(client, alice, provider):
    assert sign_in(client, provider, {**VERIFIED, "email": "Alice@Example.org"}) == "/"

    assert signed_in_as(client) == alice


@pytest.mark.parametrize("claims", [
    {**VERIFIED, "email_verified": False},
    {key: value for key, value in VERIFIED.items() if key != "email_verified"},
    {"sub": "g-1"},
])
def test_an_email_the_provider_does_not_vouch_for_signs_nobody_in(client, alice, provider,
                                                                   claims):
    claims = {**claims, "email": "alice@example.org"} if "email" in claims else claims
    landed = sign_in(client, provider, claims)

    assert landed == "/accounts/login/?sso=failed" and signed_in_as(client) is None
    page = client.get(landed).content.decode()
    assert "did not work" in page and "must be verified" in page


def test_only_the_allowed_domains_sign_in(client, db, provider, settings):
    settings.OIDC_ALLOWED_DOMAINS = ["corp.example"]

    assert sign_in(client, provider, VERIFIED) == "/accounts/login/?sso=failed"
    assert "end in corp.example" in client.get("/accounts/login/?sso=failed").content.decode()
    assert sign_in(client, provider, {**VERIFIED, "email": "dan@corp.example"}) == "/"


def test_without_account_creation_only_existing_accounts_sign_in(client, alice, provider,
                                                                 settings):
    settings.OIDC_CREATE_USER = False

    assert sign_in(client, provider, VERIFIED) == "/accounts/login/?sso=failed"
    assert sign_in(client, provider, {**VERIFIED, "email": "alice@example.org"}) == "/"


def test_a_deactivated_account_does_not_sign_in(client, alice, provider):
    alice.is_active = False
    alice.save()

    assert sign_in(client, provider, {**VERIFIED, "email": "alice@example.org"}) == (
        "/accounts/login/?sso=failed")


def test_passwords_still_work_beside_it(client, alice, provider):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302 and signed_in_as(client) == alice
