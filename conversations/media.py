"""A request's files, as Gemini takes them: just before a request is sent, every block that
refers to a stored file becomes inline `data` or a Files API `uri`.

A turn's input (and a stored step's content) refers to a file by a block with one key of
ours, `attachment`: `{"type": "image", "mime_type": "image/png", "attachment": {"id": …,
"url": "/files/<id>/", "name": "cat.png", "size": 1234}}`. `resolve` sends a copy of the body
in which that key is gone and, instead:

- everything goes inline (base64 read from disk) while the whole request stays under
  INLINE_MEDIA_MAX_BYTES; past it, files with a live Files API copy and then the largest
  ones go by `uri` until the rest fits;
- a Files API copy is reused until FILES_API_REUSE_MARGIN seconds before it expires, else
  uploaded (again) from disk in chunks, and waited for until Google has processed it;
- a generated image in a replayed model step always goes inline, byte for byte what the
  model sent (the base64 of the stored bytes): the model's signatures cover it.

Blocks of other types, and every other field, pass through unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import selectors, services
from .interactions import APIError, FileError, InteractionsClient, InteractionsError
from .interactions.files import file_id
from .models import Attachment

MEDIA_TYPES = frozenset({"image", "audio", "video", "document"})
# Items of `input` the person (or this app) wrote; any other step is the model's.
OURS = frozenset({"user_input", "function_result", "text", *MEDIA_TYPES})
DATA_FIELD = len(',"data":""')  # what an inline file adds besides its base64
# Gemini keeps an upload 48 hours; when it does not say until when, assume a bit less.
ASSUMED_LIFETIME = timedelta(hours=47)

# Told what is being done while files are prepared ("Uploading cat.png (40%)…").
Progress = Callable[[str], None]


class MediaError(InteractionsError):
    """A file of the request could not be sent; the message says which and what to do."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@dataclass
class Ref:
    """One attachment block of the body: where it sits, and whether the model wrote it."""

    container: list | dict
    key: int | str
    block: dict
    model: bool

    @property
    def id(self) -> str:
        return str(self.block["attachment"].get("id"))

    @property
    def sent(self) -> dict:
        """The block as it will be sent (what sits in the body now)."""
        return self.container[self.key]  # type: ignore[index]


@dataclass
class Resolved:
    """The body to send, and the Files API ids it refers to (-> attachment ids)."""

    body: dict
    remote: dict[str, str] = field(default_factory=dict)


def is_attachment_block(node: Any) -> bool:
    return (isinstance(node, dict) and node.get("type") in MEDIA_TYPES
            and isinstance(node.get("attachment"), dict) and "id" in node["attachment"])


def find_refs(body: dict) -> list[Ref]:
    """Every attachment block of the body's `input`, in order."""
    refs: list[Ref] = []
    value = body.get("input")
    if isinstance(value, list):
        for index, item in enumerate(value):
            model = isinstance(item, dict) and item.get("type") not in OURS
            _walk(value, index, model, refs)
    elif value is not None:
        _walk(body, "input", False, refs)
    return refs


def _walk(container: list | dict, key: int | str, model: bool, refs: list[Ref]) -> None:
    node = container[key]  # type: ignore[index]
    if is_attachment_block(node):
        refs.append(Ref(container, key, node, model))
    elif isinstance(node, dict):
        for name in node:
            _walk(node, name, model, refs)
    elif isinstance(node, list):
        for index in range(len(node)):
            _walk(node, index, model, refs)


async def resolve(body: dict, *, owner_id: Any, client: InteractionsClient | None,
                  progress: Progress) -> Resolved:
    """The body with its files resolved (a copy; `body` is not changed). Without a client
    (the offline model, which reads no media) the blocks are only stripped of our key."""
    if not find_refs(body):
        return Resolved(body)
    body = copy.deepcopy(body)
    refs = find_refs(body)
    attachments = await database_sync_to_async(selectors.attachments_by_id)(
        owner_id=owner_id, ids=list({ref.id for ref in refs}))
    for ref in refs:
        attachment = attachments.get(ref.id)
        if attachment is None:
            raise MediaError("attachment_missing", f"The file “{_label(ref.block)}” is no "
                             "longer stored here, so this message cannot be sent. Edit it, "
                             "or send it again without that file.", retryable=False)
        ref.container[ref.key] = api_block(ref.block, attachment)  # type: ignore[index]
    if client is None:
        return Resolved(body)
    by_uri = plan(body, refs, attachments, now=timezone.now())
    return await _Sender(client, progress).fill(body, refs, attachments, by_uri)


def api_block(block: dict, attachment: Attachment) -> dict:
    """The block without our key, data or uri (they are filled in next)."""
    sent = {k: v for k, v in block.items() if k not in ("attachment", "data", "uri")}
    sent.setdefault("mime_type", attachment.mime_type)
    return sent


def reusable(attachment: Attachment, now: datetime) -> bool:
    """Whether its Files API copy will outlive the request comfortably."""
    margin = timedelta(seconds=settings.FILES_API_REUSE_MARGIN)
    return bool(attachment.remote_uri and attachment.remote_expires
                and attachment.remote_expires > now + margin)


def inline_size(size: int) -> int:
    return 4 * ((size + 2) // 3) + DATA_FIELD


def plan(body: dict, refs: list[Ref], attachments: dict[str, Attachment], *,
         now: datetime) -> set[str]:
    """The attachments to send by Files API uri: none while the whole request fits inline;
    else those with a live copy (free to send), then the largest, until the rest fits.
    A generated file the model's step carries always goes inline."""
    cost: dict[str, int] = {}
    for ref in refs:
        cost[ref.id] = cost.get(ref.id, 0) + inline_size(attachments[ref.id].size)
    total = len(json.dumps(body, separators=(",", ":")).encode()) + sum(cost.values())
    limit = settings.INLINE_MEDIA_MAX_BYTES
    pinned = {ref.id for ref in refs
              if ref.model and attachments[ref.id].source == Attachment.Source.GENERATED}
    movable = sorted((i for i in cost if i not in pinned), key=lambda i: (
        not reusable(attachments[i], now), -attachments[i].size))
    by_uri: set[str] = set()
    for attachment_id in movable:
        if total <= limit:
            break
        by_uri.add(attachment_id)
        total -= cost[attachment_id]
    return by_uri


class _Sender:
    """Fills the body's blocks in: reads files for inline data, uploads the others."""

    def __init__(self, client: InteractionsClient, progress: Progress) -> None:
        self.client = client
        self.progress = progress

    async def fill(self, body: dict, refs: list[Ref], attachments: dict[str, Attachment],
                   by_uri: set[str]) -> Resolved:
        resolved = Resolved(body)
        values: dict[str, str] = {}  # attachment id -> base64 or uri (each read/sent once)
        for ref in refs:
            attachment = attachments[ref.id]
            if ref.id not in values:
                values[ref.id] = await (self.uri(attachment) if ref.id in by_uri
                                        else self.data(attachment))
            ref.sent["uri" if ref.id in by_uri else "data"] = values[ref.id]
            if ref.id in by_uri:
                resolved.remote[file_id(attachment.remote_name)] = ref.id
        return resolved

    async def data(self, attachment: Attachment) -> str:
        try:
            return await asyncio.to_thread(_read_base64, attachment)
        except OSError as exc:
            raise _unreadable(attachment, exc) from exc

    async def uri(self, attachment: Attachment) -> str:
        if not reusable(attachment, timezone.now()):
            await self.upload(attachment)
        return attachment.remote_uri

    async def upload(self, attachment: Attachment) -> None:
        """Upload from disk, wait until Google has processed it, remember the copy."""
        label = attachment.name or "the file"
        shown = [-1]

        def uploaded(sent: int, total: int) -> None:
            percent = sent * 100 // total if total else 100
            if percent != shown[0]:  # a frame per percent, not per chunk
                shown[0] = percent
                self.progress(f"Uploading {label} ({percent}%)…")

        uploaded(0, attachment.size)
        try:
            source = await asyncio.to_thread(_open, attachment)
        except OSError as exc:
            raise _unreadable(attachment, exc) from exc
        try:
            file = await self.client.upload_file(source, mime_type=attachment.mime_type,
                                                 display_name=attachment.name or None,
                                                 progress=uploaded)
            file = await self.active(file, label)
        except MediaError:
            raise
        except InteractionsError as exc:
            raise MediaError("upload_failed", f"Uploading “{label}” to Gemini failed: "
                             f"{exc.message}", retryable=exc.retryable) from exc
        finally:
            await asyncio.to_thread(source.close)
        await self.remember(attachment, file)

    async def active(self, file: dict, label: str) -> dict:
        """Wait for Google to process the file (video, large files), if it is not done."""
        if file.get("state") in ("ACTIVE", None):
            return file
        self.progress(f"Waiting for Google to process {label}…")
        timeout = settings.FILES_API_ACTIVE_TIMEOUT
        try:
            return await self.client.wait_until_active(file["name"], timeout=timeout)
        except FileError as exc:
            if exc.retryable:  # still processing when the time ran out
                raise MediaError("file_processing_timeout", f"Google was still processing "
                                 f"“{label}” after {timeout} s. Try again in a while.",
                                 retryable=True) from exc
            raise MediaError("file_failed", f"Google could not process “{label}”: "
                             f"{exc.message} Try another file.", retryable=False) from exc

    async def remember(self, attachment: Attachment, file: dict) -> None:
        expires = parse_datetime(str(file.get("expirationTime") or ""))
        attachment.remote_name = file["name"]
        attachment.remote_uri = file["uri"]
        attachment.remote_expires = expires or timezone.now() + ASSUMED_LIFETIME
        await database_sync_to_async(services.attachment_remember_remote)(
            attachment_id=attachment.pk, name=attachment.remote_name,
            uri=attachment.remote_uri, expires=attachment.remote_expires)


def gone(exc: Exception, resolved: Resolved) -> list[str]:
    """The attachments sent by uri that an error answer says the upstream does not have
    (expired early, deleted): its message names the file."""
    if not isinstance(exc, APIError) or exc.status_code not in (400, 403, 404):
        return []
    return [attachment_id for remote, attachment_id in resolved.remote.items()
            if f"files/{remote}" in exc.message]


def _unreadable(attachment: Attachment, exc: OSError) -> MediaError:
    return MediaError("attachment_missing", f"The file “{attachment.name or attachment.pk}” "
                      f"could not be read on this server ({exc.strerror or exc}), so this "
                      "message cannot be sent.", retryable=False)


def _label(block: dict) -> str:
    return str(block["attachment"].get("name") or "attached")


def _open(attachment: Attachment):
    return attachment.file.storage.open(attachment.file.name, "rb")


def _read_base64(attachment: Attachment) -> str:
    with _open(attachment) as source:
        return base64.b64encode(source.read()).decode("ascii")
