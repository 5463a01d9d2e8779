"""The websocket stack as deployed: session authentication and the Origin check."""

import pytest
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def headers(client, origin: str) -> list[tuple[bytes, bytes]]:
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"cookie", cookie.encode()), (b"origin", origin.encode()), (b"host", b"localhost")]


async def connect(client, conversation, origin: str) -> tuple[bool, dict | None]:
    communicator = WebsocketCommunicator(application, f"/ws/conversations/{conversation.pk}/",
                                         headers=headers(client, origin))
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
