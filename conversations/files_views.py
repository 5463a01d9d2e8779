"""Uploading and serving attachments: `POST /files/`, `GET /files/<uuid>/`, and a shared
conversation's files through its link, `GET /shared/<token>/files/<uuid>/`.

Apart from views.py (the chat pages) because both halves work at the level of bytes on the
wire: upload handlers set before the body is parsed, and streamed, ranged responses.
"""

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST, require_safe

from conversations import selectors, services
from conversations.models import Attachment
from conversations.uploads import AttachmentUploadHandler, Refused, too_large

# Served files are untrusted: no scripts, no plugins, no requests out, and `sandbox` makes
# the document an opaque origin, so even an HTML-ish file opened directly cannot act as us.
FILE_POLICY = ("default-src 'none'; img-src 'self'; media-src 'self'; "
               "style-src 'unsafe-inline'; sandbox")
INLINE_KINDS = {"image", "audio", "video"}
CHUNK = 256 * 1024  # bytes read from disk per step when streaming a file
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _refusal(refused: Refused) -> JsonResponse:
    return JsonResponse({"error": refused.message, "code": refused.code}, status=refused.status)


@csrf_exempt  # checked in _receive, once our upload handler is in place (Django's docs way)
@login_required
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    """Store one file (multipart field `file`): 201 with its content block."""
    declared = request.META.get("CONTENT_LENGTH")
    # The body's length bounds the file's: refuse before parsing a byte of it.
    if declared and declared.isdigit() and int(declared) > settings.UPLOAD_MAX_BYTES + 64 * 1024:
        return _refusal(too_large(int(declared)))
    handler = AttachmentUploadHandler(request)
    request.upload_handlers = [handler]
    return _receive(request, handler)


@csrf_protect
def _receive(request: HttpRequest, handler: AttachmentUploadHandler) -> HttpResponse:
    request.FILES  # noqa: B018 -- parses the body through `handler`, streaming it to disk
    try:
        if handler.refusal:
            raise handler.refusal
        received = handler.upload()
    except Refused as refused:
        return _refusal(refused)
    attachment = services.attachment_create(owner=request.user, upload=received)
    return JsonResponse({"attachment": selectors.attachment_block(attachment)}, status=201)


@login_required
@require_safe
def serve(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponse:
    """The file, to its owner or a reviewer (404 for anyone else), streamed, with ranges."""
    attachment = selectors.attachment_for_viewer(user=request.user, attachment_id=attachment_id)
    # The bytes behind an id never change; `private`: shared caches must not keep them.
    return _send(request, attachment, cache="private, max-age=86400")


@login_required
@require_safe
def serve_shared(request: HttpRequest, token: str, attachment_id: uuid.UUID) -> HttpResponse:
    """A file of a shared conversation, to anyone signed in with its link: 404 once the
    link is revoked, and for a file no turn of that conversation refers to."""
    conversation = selectors.conversation_shared(token=token)
    attachment = selectors.shared_attachment(conversation=conversation,
                                             attachment_id=attachment_id)
    # Asked again each time (no-cache): a revoked link must stop showing it at once.
    return _send(request, attachment, cache="private, no-cache")


def _send(request: HttpRequest, attachment: Attachment, *, cache: str) -> HttpResponse:
    """The file's bytes (or the range asked for), with headers that keep them inert."""
    try:
        path = attachment.file.path
        size = os.path.getsize(path)
    except (ValueError, OSError):  # no file, or it went missing on disk
        return JsonResponse({"error": "This file is no longer stored.", "code": "gone"},
                            status=404)
    span = _range(request.headers.get("Range", ""), size)
    if span is None:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return _protect(response)
    start, end = span
    response = StreamingHttpResponse(_read(path, start, end - start + 1),
                                     content_type=_content_type(attachment))
    response["Content-Length"] = str(end - start + 1)
    if (start, end) != (0, size - 1):
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{attachment.sha256}"'
    response["Cache-Control"] = cache
    response["Content-Disposition"] = content_disposition_header(
        _as_download(request, attachment), attachment.name or "file")
    return _protect(response)


def _protect(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_POLICY
    return response


def _content_type(attachment: Attachment) -> str:
    # Text was checked to be UTF-8 on upload: say so, so no browser guesses another charset.
    if attachment.mime_type.startswith("text/"):
        return f"{attachment.mime_type}; charset=utf-8"
    return attachment.mime_type


def _as_download(request: HttpRequest, attachment: Attachment) -> bool:
    inline = attachment.kind in INLINE_KINDS or attachment.mime_type == "application/pdf"
    return request.GET.get("download") == "1" or not inline


def _range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte to send: the whole file, or the one range asked for (several
    ranges, or a malformed header, get the whole file, as RFC 9110 allows); None when the
    range lies outside the file (416)."""
    whole = (0, size - 1)
    match = RANGE.match(header.strip())
    if not match or size == 0 or not any(match.groups()):
        return whole
    first, last = match.groups()
    if not first:  # "bytes=-500": the last 500 bytes
        return (max(0, size - int(last)), size - 1) if int(last) else None
    start, end = int(first), min(int(last) if last else size - 1, size - 1)
    return (start, end) if start <= end else None


async def _read(path: str, start: int, length: int) -> AsyncIterator[bytes]:
    """The bytes, a chunk at a time off the event loop. An async iterator, because Django
    under ASGI reads a synchronous one whole into memory before sending any of it."""
    file = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(file.seek, start)
        while length > 0:
            chunk = await asyncio.to_thread(file.read, min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        file.close()
