"""The websocket stack as deployed: session authentication and the Origin check."""

import pytest
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def headers(client, origin: str, host: str = "localhost", **extra) -> list[tuple[bytes, bytes]]:
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"cookie", cookie.encode()), (b"origin", origin.encode()), (b"host", host.encode()),
            *((name.replace("_", "-").encode(), value.encode()) for name, value in extra.items())]


async def connect(client, conversation, origin: str, **options) -> tuple[bool, dict | None]:
    communicator = WebsocketCommunicator(application, f"/ws/conversations/{conversation.pk}/",
                                         headers=headers(client, origin, **options))
    connected, _ = await communicator.connect(timeout=5)
    first = await communicator.receive_json_from(timeout=5) if connected else None
    await communicator.disconnect()
    return connected, first


async def test_the_owners_session_gets_a_snapshot(alice_client, conversation):
    connected, first = await connect(alice_client, conversation, "http://localhost")
    assert connected and first["type"] == "snapshot"
    assert first["conversation"]["id"] == str(conversation.pk)


async def test_a_foreign_origin_is_refused(alice_client, conversation):
    connected, _ = await connect(alice_client, conversation, "http://evil.example")
    assert not connected


@pytest.mark.parametrize("origin", [
    "http://localhost:9999",  # another program on this machine
    "https://localhost",  # the right host, the wrong scheme
    "http://localhost.evil.example",
    "null",
])
async def test_an_origin_differing_in_scheme_or_port_is_refused(alice_client, conversation,
                                                                origin):
    connected, _ = await connect(alice_client, conversation, origin)
    assert not connected


async def test_the_port_must_match_the_host_header(alice_client, conversation):
    assert (await connect(alice_client, conversation, "http://localhost:8000",
                          host="localhost:8000"))[0]
    assert not (await connect(alice_client, conversation, "http://localhost",
                              host="localhost:8000"))[0]


async def test_behind_a_tls_proxy_the_origin_is_https(alice_client, conversation, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert (await connect(alice_client, conversation, "https://localhost",
                          x_forwarded_proto="https"))[0]
    assert not (await connect(alice_client, conversation, "http://localhost",
                              x_forwarded_proto="https"))[0]


async def test_csrf_trusted_origins_are_trusted(alice_client, conversation, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.org", "https://*.example.net"]
    for origin in ("https://chat.example.org", "https://a.example.net"):
        assert (await connect(alice_client, conversation, origin))[0], origin
    assert not (await connect(alice_client, conversation, "http://a.example.net"))[0]


async def test_a_host_outside_allowed_hosts_is_refused(alice_client, conversation):
    connected, _ = await connect(alice_client, conversation, "http://evil.example",
                                 host="evil.example")
    assert not connected
