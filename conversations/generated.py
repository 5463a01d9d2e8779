"""Media a model generates (images, audio, video): saved as files, referred to from the steps.

A content block that arrives with inline base64 `data` leaves the runner as a reference to an
`Attachment` of source `generated` instead (the contract in models.Attachment):

    {"type": "image", "mime_type": "image/png",
     "attachment": {"id": "<uuid>", "url": "/files/<uuid>/", "name": "image-1.png", "size": 1234}}

so frames, checkpoints, the final write and snapshots carry a URL, never the bytes. The
block keeps every other field, in its place: a stateless replay (media.py) puts `data` back
where `attachment` is and sends the block exactly as it came.

`find_media` and `refer` are pure; `save_generated` writes through the services (one row
and file per owner and bytes, as uploads), and `store_media` is what the runner awaits
for an event that carries media.
"""

import asyncio
import base64
import binascii
import hashlib
import logging
import mimetypes
from collections import Counter
from collections.abc import Iterator
from typing import Any

from channels.db import database_sync_to_async
from django.core.files.base import ContentFile

from . import services
from .interactions.delta_handlers import copy_json
from .interactions.events import Event, InteractionCompleted, StepDelta, StepStart
from .models import Attachment

logger = logging.getLogger(__name__)

MEDIA_KINDS = frozenset({"image", "audio", "video"})
# Types a browser could run as a page or a script if it ever opened one of our files as a
# document: a generated file is never served as one of these, whatever it claims to be.
ACTIVE_TYPES = frozenset({"image/svg+xml", "text/html", "application/xhtml+xml", "text/xml",
                          "application/xml", "application/javascript", "text/javascript"})
FALLBACK_TYPE = "application/octet-stream"


def file_url(attachment_id: Any) -> str:
    """Where the site serves an attachment (the contract's `/files/<uuid>/`)."""
    return f"/files/{attachment_id}/"


# -- finding inline media in an event (pure) -------------------------------------------


def _inline(block: Any) -> bool:
    return (type(block) is dict and block.get("type") in MEDIA_KINDS
            and isinstance(block.get("data"), str))


def _in_step(step: Any) -> Iterator[dict]:
    """Inline blocks of a step: its content, and a thought's summary (which may hold images)."""
    if type(step) is not dict:
        return
    for key in ("content", "summary"):
        blocks = step.get(key)
        if type(blocks) is dict:
            blocks = [blocks]
        if type(blocks) is list:
            yield from (b for b in blocks if _inline(b))


def find_media(raw: dict, event_type: type[Event]) -> list[dict]:
    """The blocks with inline media in one event's raw JSON (the dicts themselves).

    Media arrive as a delta of their own (`{"type": "image", "data": ...}`), inside a
    thought_summary delta, in a step.start that already carries content (protocol 14.1), or
    in the steps of an interaction.completed that streamed none.
    """
    if event_type is StepDelta:
        delta = raw.get("delta")
        if _inline(delta):
            return [delta]
        if type(delta) is dict and delta.get("type") == "thought_summary":
            return list(_in_step({"summary": delta.get("content")}))
        return []
    if event_type is StepStart:
        return list(_in_step(raw.get("step")))
    if event_type is InteractionCompleted:
        steps = (raw.get("interaction") or {}).get("steps")
        return [b for s in steps for b in _in_step(s)] if type(steps) is list else []
    return []


def carries_media(event: Event) -> bool:
    """Cheap on the hot path: most events are text deltas, which never carry media."""
    kind = type(event)
    if kind is StepDelta:
        delta = event.raw.get("delta")
        if type(delta) is not dict or delta.get("type") in ("text", None):
            return False
    elif kind is not StepStart and kind is not InteractionCompleted:
        return False
    return bool(find_media(event.raw, kind))


def refer(block: dict, attachment: Attachment) -> None:
    """Replace the block's `data` by a reference to the saved file, in the same place."""
    reference = {"id": str(attachment.pk), "url": file_url(attachment.pk),
                 "name": attachment.name, "size": attachment.size}
    fields = {("attachment" if k == "data" else k): (reference if k == "data" else v)
              for k, v in block.items()}
    block.clear()
    block.update(fields)


def decode(block: dict) -> bytes:
    """The block's bytes; ValueError when its `data` is not base64."""
    try:
        return base64.b64decode(block["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the {block.get('type')} is not valid base64: {exc}") from None


def file_name(kind: str, number: int, mime_type: str) -> str:
    """`image-1.png`: the kind, its number in the turn, the extension of its type."""
    extension = mimetypes.guess_extension(mime_type.split(";")[0].strip()) or ""
    return f"{kind}-{number}{extension}"


def served_type(data: bytes, kind: str) -> str:
    """The type the file is served as: read from its bytes, never taken from the model."""
    import puremagic

    try:
        sniffed = puremagic.from_string(data, mime=True) or ""
    except puremagic.PureError:
        sniffed = ""
    if sniffed.startswith(f"{kind}/") and sniffed not in ACTIVE_TYPES:
        return sniffed
    return FALLBACK_TYPE


# -- the service ---------------------------------------------------------------------


def save_generated(*, owner_id: Any, data: bytes, kind: str, name: str) -> Attachment:
    """Store generated bytes once per owner (by SHA-256), as uploads are; returns the row.

    The same bytes generated again (or uploaded before) reuse the row and file there is.
    """
    attachment, _ = services.attachment_store_once(
        owner_id=owner_id, sha256=hashlib.sha256(data).hexdigest(), content=ContentFile(data),
        name=name, kind=kind, size=len(data), mime_type=served_type(data, kind),
        source=Attachment.Source.GENERATED)
    return attachment


async def store_media(event: Event, *, owner_id: Any, numbers: Counter) -> Event:
    """The event with its inline media saved as files and referred to (`numbers` counts
    the turn's media by kind, for their names).

    Decoding and writing happen off the event loop. A block that cannot be saved keeps its
    data (logged): the reply is never lost for want of a file.
    """
    raw = copy_json(event.raw)  # the backend's event stays as it came
    saved = False
    for block in find_media(raw, type(event)):
        kind = block["type"]
        numbers[kind] += 1
        try:
            data = await asyncio.to_thread(decode, block)
            name = file_name(kind, numbers[kind], str(block.get("mime_type") or ""))
            attachment = await database_sync_to_async(save_generated)(
                owner_id=owner_id, data=data, kind=kind, name=name)
        except Exception:
            logger.exception("could not save a generated %s as a file; the step keeps its "
                             "data", kind)
            continue
        refer(block, attachment)
        saved = True
    return type(event)(raw) if saved else event
