"""The conversation websocket: authorize, validate, call services, relay frames.

The protocol is documented in docs/websocket.md.
"""

import asyncio
import json
import logging
import uuid
from importlib import import_module
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404

from chatsite import logs

from . import catalogue, limits, protocol, runner, selectors, services, signals
from .models import RUNNING_STATUSES, Attachment, Conversation, Turn
from .protocol import dumps

logger = logging.getLogger(__name__)

MAX_TEXT = 100_000
MAX_FRAME = 512 * 1024
MAX_CLIENT_ID = 64
CLOSE_REAUTHENTICATE = 4001  # sign-in changed: reconnect, and the handshake checks again
CLOSE_LOGGED_OUT = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY_SOCKETS = 4429
FILES_UNSUPPORTED = ("The offline model cannot see files: remove them, or choose a Gemini "
                     "model in this conversation's settings.")
SYNC_INTERVAL = 2.0  # seconds: a client asking for more snapshots gets one per interval


class FrameError(Exception):
    def __init__(self, code: str, message: str, **context):
        super().__init__(message)
        self.code, self.message, self.context = code, message, context


class SignedOut(Exception):
    """The socket's session ended (logout, new password, deactivation) since it opened."""


class ConversationConsumer(AsyncWebsocketConsumer):
    conversation = None
    counted = False  # this socket counts against its user's open sockets
    rate: limits.FrameRate | None = None  # set once the socket is accepted

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Frames sent before the socket left its groups may still arrive: with Redis
            # they would wait in this process for a receive that never comes.
            forget = getattr(self.channel_layer, "forget", None)
            if forget is not None and hasattr(self, "channel_name"):
                forget(self.channel_name)

    async def connect(self) -> None:
        # Refusals are sent as close codes after the handshake, so the page can tell the
        # person why and stop reconnecting; nothing else is ever sent on such a socket.
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_LOGGED_OUT)
            return
        try:
            conversation = await database_sync_to_async(selectors.conversation_for_user)(
                user=user, conversation_id=self.scope["url_route"]["kwargs"]["conversation_id"])
        except Http404:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        logs.conversation_id.set(str(conversation.pk))  # this socket's log lines are about it
        self.counted = limits.sockets.open(user.pk, settings.MAX_SOCKETS_PER_USER)
        if not self.counted:
            logger.warning("websocket refused: user %s has MAX_SOCKETS_PER_USER (%d) open",
                           user.pk, settings.MAX_SOCKETS_PER_USER)
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.conversation = conversation  # from here on, disconnect() has groups to leave
        self.rate = limits.FrameRate(settings.SOCKET_FRAMES_PER_SECOND, settings.SOCKET_FRAME_BURST)
        self.rate_told = False
        self.next_sync = 0.0
        self.sync_timer: asyncio.TimerHandle | None = None
        self.group = protocol.group_name(self.conversation.pk)
        self.user_group = signals.user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()
        await self.send_snapshot()
        self.attach()

    async def disconnect(self, code: int) -> None:
        if self.counted:
            limits.sockets.close(self.scope["user"].pk)
            self.counted = False
            if self.sync_timer is not None:
                self.sync_timer.cancel()
        if self.conversation is not None:
            self.detach()
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def auth_changed(self, message: dict) -> None:
        await self.close(code=CLOSE_REAUTHENTICATE)

    async def dispatch(self, message: dict) -> None:
        # The streaming hot path touches no database: skip the thread hop Channels makes
        # around every handler to close stale database connections.
        if message["type"] == "turn.frame":
            await self.send(text_data=message["text"])
            if not self.attached:  # frames queued during the snapshot are out: go direct
                self.attach()
            return
        await super().dispatch(message)

    # Direct delivery (the in-memory layer of the embedded default): frames come
    # straight from the runner instead of through this consumer's channel queue.
    attached = False

    def attach(self) -> None:
        attach = getattr(self.channel_layer, "attach", None)
        if attach is not None:
            self.attached = attach(self.channel_name, self.dispatch)

    def detach(self) -> None:
        if self.attached:
            self.channel_layer.detach(self.channel_name)
            self.attached = False

    # -- frames from the browser ------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if self.rate is None:  # a refused socket, closing
            return
        if wait := self.rate.wait():  # dropped unread: a flood costs no parsing or database
            if not self.rate_told:  # said once per flood, so the refusals do not flood back
                self.rate_told = True
                logger.warning("websocket of user %s: frames dropped past "
                               "SOCKET_FRAMES_PER_SECOND (%g)", self.scope["user"].pk,
                               self.rate.rate)
                await self.send_json({
                    "type": "error", "code": "rate_limited", "retry_after": limits.retry_after(
                        wait),
                    "message": f"Too many frames: this socket may send {self.rate.rate:g} a "
                               "second. That one was dropped; try again in a moment."})
            return
        self.rate_told = False
        try:
            frame = parse_frame(text_data)
            handler = FRAME_HANDLERS.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", f"Unknown frame type {frame['type']!r}.")
            await handler(self, frame)
        except FrameError as exc:
            await self.send_json({"type": "error", "code": exc.code, "message": exc.message,
                                  **exc.context})
        except Conversation.DoesNotExist:  # deleted (in another tab) while this one was open
            await self.close(code=CLOSE_NOT_FOUND)
        except SignedOut:
            await self.close(code=CLOSE_LOGGED_OUT)

    async def on_send(self, frame: dict) -> None:
        client_id = client_id_of(frame)
        text = frame.get("text", "")
        ids = attachment_ids_of(frame, client_id)
        if not isinstance(text, str) or not (text.strip() or ids):
            raise FrameError("bad_frame", "A message needs some text or a file.",
                             client_id=client_id)
        if len(text) > MAX_TEXT:
            raise FrameError("too_long", f"A message can be at most {MAX_TEXT:,} characters; "
                             f"this one has {len(text):,}.", client_id=client_id)
        parent_id = frame.get("parent_id")
        if parent_id is not None and not isinstance(parent_id, str):
            raise FrameError("bad_frame", "parent_id must be a turn id or null.",
                             client_id=client_id)
        blocks = await database_sync_to_async(_attachment_blocks)(
            self.conversation, self.scope["user"].pk, ids, client_id) if ids else []
        text_block = [{"type": "text", "text": text}] if text.strip() else []
        await self.create_turn(client_id=client_id, parent_id=parent_id,
                               content=blocks + text_block)

    async def on_regenerate(self, frame: dict) -> None:
        client_id = client_id_of(frame)
        turn = await self.get_turn(frame.get("turn_id"))
        await self.create_turn(client_id=client_id, parent_id=turn["parent_id"],
                               content=turn["input"])

    async def on_stop(self, frame: dict) -> None:
        turn = await self.get_turn(frame.get("turn_id"))
        await runner.stop(self.conversation.pk, turn["id"])

    async def on_sync(self, frame: dict) -> None:
        """A snapshot now, or, when one went out less than SYNC_INTERVAL ago, one at the end
        of the interval for all the syncs asked for meanwhile (a snapshot can be large)."""
        loop = asyncio.get_running_loop()
        if self.sync_timer is not None:
            return
        delay = self.next_sync - loop.time()
        if delay <= 0:
            self.next_sync = loop.time() + SYNC_INTERVAL
            await self.send_snapshot()
            return

        def due() -> None:
            self.sync_timer = None
            self.next_sync = loop.time() + SYNC_INTERVAL
            self.sync_task = asyncio.ensure_future(self.send_snapshot())

        self.sync_timer = loop.call_later(delay, due)

    async def on_select(self, frame: dict) -> None:
        """Show another version of a message: its branch, down to the newest leaf, is sent
        and remembered as the one on screen."""
        turn_id = frame.get("turn_id")
        turns = await database_sync_to_async(_select)(self.conversation, self.valid_id(turn_id))
        await self.send_turns("branch", {"turn_id": turn_id}, turns)

    async def on_history(self, frame: dict) -> None:
        """The turns of the branch just above `turn_id`, a page at a time."""
        turn_id = frame.get("turn_id")
        turns = await database_sync_to_async(_history)(self.conversation, self.valid_id(turn_id))
        await self.send_turns("history", {"turn_id": turn_id}, turns)

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def valid_id(turn_id) -> str:
        if not isinstance(turn_id, str):
            raise FrameError("bad_frame", "turn_id is missing.")
        return turn_id

    async def create_turn(self, *, client_id: str, parent_id: str | None,
                          content: list[dict]) -> None:
        try:
            turn, created, titled, title = await database_sync_to_async(_create_turn)(
                conversation=self.conversation, client_id=client_id, parent_id=parent_id,
                content=content, session_key=self.scope["session"].session_key,
                user_pk=self.scope["user"].pk)
        except (Conversation.DoesNotExist, SignedOut):
            raise
        except ObjectDoesNotExist:
            raise FrameError("not_found", "That message is not in this conversation.",
                             client_id=client_id) from None
        except ValidationError as exc:
            first = exc.error_list[0]
            # A limit that lifts at a known time (a quota, a rate) says when, in seconds.
            wait = {k: v for k, v in (first.params or {}).items() if k == "retry_after"}
            raise FrameError(first.code or "busy", " ".join(exc.messages),
                             client_id=client_id, **wait) from None
        announcement = protocol.turn_created(turn)
        if not created:  # a resend after a reconnect: tell this socket only
            await self.send_json(announcement)
            return
        await self.relay(announcement)
        runner.start(turn)
        if titled:  # the first message named the conversation
            self.conversation.title = title
            await self.relay(protocol.conversation_updated(self.conversation))

    async def relay(self, frame: dict) -> None:
        """Send a frame to every socket of this conversation."""
        await self.channel_layer.group_send(self.group, protocol.envelope(frame))

    async def get_turn(self, turn_id) -> dict:
        return await database_sync_to_async(_turn_dict)(self.conversation, self.valid_id(turn_id))

    async def send_snapshot(self) -> None:
        conversation, turns = await database_sync_to_async(_snapshot)(self.conversation.pk)
        await self.send_turns("snapshot", {"conversation": conversation}, turns)

    async def send_turns(self, kind: str, head: dict, turns: list[dict]) -> None:
        """Send turns from the database, with the live state of those running here; turns
        running in another process (team deployment) send theirs as `turn.sync`."""
        live = {turn["id"]: turn for turn in runner.live_turns(self.conversation.pk)}
        turns = [dict(turn, **live[turn["id"]]) if turn["id"] in live else turn
                 for turn in turns]
        for text in protocol.turn_frames(kind, head, turns):
            await self.send(text_data=text)
        if any(t["id"] not in live and t["status"] in RUNNING_STATUSES for t in turns):
            await runner.request_sync(self.conversation.pk, self.channel_name)

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=protocol.dumps(content))


FRAME_HANDLERS = {
    "send": ConversationConsumer.on_send,
    "regenerate": ConversationConsumer.on_regenerate,
    "stop": ConversationConsumer.on_stop,
    "sync": ConversationConsumer.on_sync,
    "select": ConversationConsumer.on_select,
    "history": ConversationConsumer.on_history,
}


def parse_frame(text_data: str | None) -> dict:
    if text_data is None:
        raise FrameError("bad_json", "Frames must be JSON text, not binary.")
    if len(text_data) > MAX_FRAME:
        raise FrameError("too_long", f"A frame can be at most {MAX_FRAME // 1024} KiB.")
    try:
        frame = json.loads(text_data)
    except ValueError:
        raise FrameError("bad_json", "That frame is not valid JSON.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("bad_json", "A frame must be a JSON object with a \"type\".")
    try:  # JSON may spell a lone UTF-16 surrogate ("\ud800"), which no UTF-8 text can hold
        dumps(frame).encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError("bad_frame", "That frame holds text that is not valid Unicode (a "
                         "lone surrogate); it was not saved.") from None
    return frame


def attachment_ids_of(frame: dict, client_id: str) -> list[str]:
    """The `attachments` of a `send`: a list of at most MAX_ATTACHMENTS_PER_MESSAGE ids."""
    ids = frame.get("attachments") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise FrameError("bad_frame", "attachments must be a list of file ids.",
                         client_id=client_id)
    limit = settings.MAX_ATTACHMENTS_PER_MESSAGE
    if len(ids) > limit:
        raise FrameError("too_many_files", f"A message can carry at most {limit} files; this "
                         f"one has {len(ids)}. Remove some, or send them in two messages.",
                         client_id=client_id)
    return list(dict.fromkeys(ids))  # the same file twice is sent once


def client_id_of(frame: dict) -> str:
    client_id = frame.get("client_id")
    if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID:
        raise FrameError("bad_frame", f"client_id must be a string of 1 to {MAX_CLIENT_ID} "
                         "characters.")
    return client_id


# -- database work, one thread hop each ------------------------------------------------

def _create_turn(*, conversation, client_id: str, parent_id: str | None, content: list[dict],
                 session_key: str | None, user_pk):
    """The turn (created, or found by its client_id), whether it is new, whether it gave
    the conversation its title, and the conversation's title as the database has it."""
    if not _signed_in(session_key, user_pk):  # checked again on every turn the user asks for
        raise SignedOut
    conversation.refresh_from_db()  # settings may have changed since the socket connected
    if catalogue.model_info(conversation.model).local and any(
            isinstance(block, dict) and "attachment" in block for block in content):
        # A regenerate of a message with files, after a switch to the offline model.
        raise ValidationError(FILES_UNSUPPORTED, code="files_unsupported")
    before = conversation.title
    parent = None
    if parent_id is not None:  # what turn_create needs of it, not its (maybe large) steps
        parent = Turn.objects.only("conversation_id", "status", "interaction_id").get(
            pk=_uuid_or_missing(parent_id), conversation=conversation)
    turn, created = services.turn_create(conversation=conversation, client_id=client_id,
                                         input=content, parent=parent)
    # turn_create names an untitled conversation after its first message, on this object.
    return turn, created, conversation.title != before, conversation.title


def _signed_in(session_key: str | None, user_pk) -> bool:
    """Whether the session still signs this user in, as the handshake would check it."""
    if not session_key:
        return False
    request = SimpleNamespace(session=import_module(settings.SESSION_ENGINE).SessionStore(
        session_key))
    return get_user(request).pk == user_pk


def _turn_dict(conversation, turn_id: str) -> dict:
    return selectors.turn_to_dict(_own_turn(conversation, turn_id))


def _snapshot(conversation_id) -> tuple[dict, list[dict]]:
    conversation = Conversation.objects.get(pk=conversation_id)
    return (selectors.conversation_to_dict(conversation),
            selectors.branch_tail(conversation=conversation, limit=settings.TURNS_PAGE))


def _own_turn(conversation, turn_id: str) -> Turn:
    try:
        return Turn.objects.select_related("conversation").get(
            pk=_uuid_or_missing(turn_id), conversation_id=conversation.pk)
    except Turn.DoesNotExist:
        raise FrameError("not_found", "That message is not in this conversation.",
                         turn_id=turn_id) from None


def _select(conversation, turn_id: str) -> list[dict]:
    turns = selectors.branch_from(turn=_own_turn(conversation, turn_id))
    services.conversation_show_branch(conversation=conversation, leaf_id=turns[-1]["id"])
    return turns


def _history(conversation, turn_id: str) -> list[dict]:
    return selectors.branch_before(turn=_own_turn(conversation, turn_id),
                                   limit=settings.TURNS_PAGE)


def _uuid_or_missing(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Turn.DoesNotExist from None


def _attachment_blocks(conversation, user_pk, ids: list[str], client_id: str) -> list[dict]:
    """The content blocks of the user's own files `ids`: refused for a model that cannot
    read files, and `not_found` (nothing created) when any of them is not the user's."""
    conversation.refresh_from_db(fields=["model"])  # it may have changed since connecting
    if catalogue.model_info(conversation.model).local:
        raise FrameError("files_unsupported", FILES_UNSUPPORTED, client_id=client_id)
    try:
        attachments = selectors.own_attachments(user_id=user_pk, ids=ids)
    except Attachment.DoesNotExist:
        raise FrameError("not_found", "One of the attached files does not exist (or is not "
                         "yours). Remove it and attach it again.", client_id=client_id) from None
    return [selectors.attachment_block(a) for a in attachments]
