"""Named users and their data: alice owns things, bob must get 404 for them.

Loaded from tests/conftest.py.
"""

import pytest
from django.test import Client

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(db, django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.org", PASSWORD)


@pytest.fixture
def bob(db, django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.org", PASSWORD)


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def conversation(alice):
    from conversations import services  # after django.setup(), even when loaded as a plugin

    return services.conversation_create(owner=alice, model="local")
