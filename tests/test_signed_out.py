"""A sign-in change reaches sockets that are already open: logout, a new password,
deactivation. The socket closes with 4001 (reconnect); the handshake then decides."""

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client

from chatsite.asgi import application
from conversations.models import Turn
from tests.django_fixtures import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


async def open_socket(client, conversation) -> WebsocketCommunicator:
    """A socket through the deployed stack (session cookie, Origin check)."""
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, f"/ws/conversations/{conversation.pk}/",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost"), (b"host", b"localhost")])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def closed_with(communicator) -> int | None:
    """The close code the server sends next, skipping other frames."""
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output.get("code")


async def first_frame(communicator) -> dict:
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.send", output
    return output


async def reconnect_code(client, conversation) -> int | str:
    """What a reconnect with this client's cookie gets: a snapshot, or a close code."""
    communicator = await open_socket(client, conversation)
    output = await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    return "snapshot" if output["type"] == "websocket.send" else output.get("code")


@pytest.fixture
def second_client(alice) -> Client:
    """alice signed in a second time, in another browser."""
    client = Client()
    client.force_login(alice)
    return client


async def test_logout_closes_the_sessions_sockets_and_only_that_session_ends(
        alice_client, second_client, conversation):
    mine = await open_socket(alice_client, conversation)
    other = await open_socket(second_client, conversation)
    await first_frame(mine)
    await first_frame(other)

    await sync_to_async(alice_client.post)("/accounts/logout/")

    assert await closed_with(mine) == 4001
    assert await closed_with(other) == 4001
    assert await reconnect_code(alice_client, conversation) == 4401
    assert await reconnect_code(second_client, conversation) == "snapshot"


@pytest.mark.parametrize("change", ["password", "deactivate"])
async def test_a_new_password_or_deactivation_ends_every_session(alice, alice_client,
                                                                 conversation, change):
    socket = await open_socket(alice_client, conversation)
    await first_frame(socket)

    def apply() -> None:
        if change == "password":
            alice.set_password(PASSWORD + " but new")
        else:
            alice.is_active = False
        alice.save()

    await sync_to_async(apply)()

    assert await closed_with(socket) == 4001
    assert await reconnect_code(alice_client, conversation) == 4401


async def test_other_saves_of_the_user_leave_sockets_alone(alice, alice_client, conversation):
    socket = await open_socket(alice_client, conversation)
    await first_frame(socket)
    alice.first_name = "Alice"
    await sync_to_async(alice.save)()

    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_a_send_on_a_socket_whose_session_ended_is_refused(alice_client, conversation):
    """A session can end without a signal (expiry, clearsessions): each send checks it."""
    socket = await open_socket(alice_client, conversation)
    await first_frame(socket)
    await Session.objects.all().adelete()

    await socket.send_json_to({"type": "send", "client_id": str(uuid.uuid4()), "text": "hi",
                               "parent_id": None})

    assert await closed_with(socket) == 4401
    assert not await Turn.objects.aexists()
