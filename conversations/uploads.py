"""Uploads: what a file really is (from its bytes), and streaming it to disk while hashing.

The type comes from the content only: puremagic's signatures, a look at the ISO base media
`ftyp` box (HEIC/HEIF, MP4, MOV, 3GP, M4A share one signature family), and a plain-text check
of our own (valid UTF-8 without NUL bytes). The browser's claim and the file's name are never
trusted for the type; a name only picks the flavour (CSV, Markdown) of what is proven text.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import puremagic
from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload

FIELD = "file"  # the multipart field that carries the upload

# What the Interactions API takes (docs: content blocks), by the MIME type puremagic reports.
ACCEPTED: dict[str, tuple[str, str]] = {
    "image/png": ("image", "image/png"),
    "image/jpeg": ("image", "image/jpeg"),
    "image/webp": ("image", "image/webp"),
    "image/gif": ("image", "image/gif"),
    "image/heic": ("image", "image/heic"),
    "image/heif": ("image", "image/heif"),
    "image/bmp": ("image", "image/bmp"),
    "image/x-ms-bmp": ("image", "image/bmp"),
    "image/tiff": ("image", "image/tiff"),
    "audio/wave": ("audio", "audio/wav"),
    "audio/wav": ("audio", "audio/wav"),
    "audio/x-wav": ("audio", "audio/wav"),
    "audio/mpeg": ("audio", "audio/mp3"),
    "audio/aac": ("audio", "audio/aac"),
    "application/ogg": ("audio", "audio/ogg"),
    "audio/ogg": ("audio", "audio/ogg"),
    "audio/flac": ("audio", "audio/flac"),
    "audio/aiff": ("audio", "audio/aiff"),
    "audio/x-aiff": ("audio", "audio/aiff"),
    "audio/mp4": ("audio", "audio/m4a"),
    "video/mp4": ("video", "video/mp4"),
    "video/quicktime": ("video", "video/mov"),
    "video/webm": ("video", "video/webm"),
    "video/3gpp": ("video", "video/3gpp"),
    "video/mpeg": ("video", "video/mpeg"),
    "video/avi": ("video", "video/avi"),
    "video/x-msvideo": ("video", "video/avi"),
    "video/x-ms-wmv": ("video", "video/wmv"),
    "video/x-flv": ("video", "video/x-flv"),
    "application/pdf": ("document", "application/pdf"),
}

# ISO base media files (MP4 and its relatives) by the major brand in their `ftyp` box:
# puremagic misses HEIF (`mif1`) and calls AVIF video/mp4.
FTYP_BRANDS: dict[bytes, tuple[str, str] | None] = {
    **dict.fromkeys([b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"],
                    ("image", "image/heic")),
    **dict.fromkeys([b"mif1", b"msf1"], ("image", "image/heif")),
    **dict.fromkeys([b"avif", b"avis"], None),  # AV1 images: the API does not take them
    **dict.fromkeys([b"qt  "], ("video", "video/mov")),
    **dict.fromkeys([b"M4A ", b"M4B "], ("audio", "audio/m4a")),
}

# Programs, named plainly: puremagic calls a Windows .exe an "Audition graphic filter".
EXECUTABLES = {
    b"MZ": "a Windows program (PE executable)",
    b"\x7fELF": "a Linux program (ELF executable)",
    b"\xcf\xfa\xed\xfe": "a macOS program (Mach-O executable)",
    b"\xfe\xed\xfa\xcf": "a macOS program (Mach-O executable)",
}

TEXT_FLAVOURS = {".csv": "text/csv", ".md": "text/markdown", ".markdown": "text/markdown"}

# A signature this short (BMP's "BM", an MP3 frame sync) also starts ordinary text files.
WEAK_CONFIDENCE = 0.4

ACCEPTED_SUMMARY = ("images (PNG, JPEG, WebP, HEIC/HEIF, GIF, BMP, TIFF), audio (WAV, MP3, "
                    "AAC, OGG, FLAC, AIFF, M4A), video (MP4, MOV, WebM, MPEG, AVI, WMV, FLV, "
                    "3GP), PDF and plain-text (UTF-8) documents")


class Refused(Exception):
    """An upload this server does not take: the HTTP status, a code and a message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def size_text(size: int) -> str:
    """1536 -> "1.5 KiB"; binary units, as the limits are written."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def too_large(size: int | None = None) -> Refused:
    limit = size_text(settings.UPLOAD_MAX_BYTES)
    what = f"This file is {size_text(size)}" if size else "This file is too large"
    return Refused(413, "too_large", f"{what}; files can be at most {limit} "
                   "(UPLOAD_MAX_BYTES). Send a smaller or shortened file.")


def detect(path: str, *, is_text: bool, name: str) -> tuple[str, str]:
    """(kind, MIME type) of the file at `path`, or Refused (415) naming what it is."""
    with open(path, "rb") as f:
        head = f.read(16)
    program = next((n for magic, n in EXECUTABLES.items() if head.startswith(magic)), None)
    if program and not is_text:  # "MZ" may begin a note too; a program holds NUL bytes
        raise _unsupported(program)
    if head[4:8] == b"ftyp" and head[8:12] in FTYP_BRANDS:
        found = FTYP_BRANDS[head[8:12]]
        if found is None:
            raise _unsupported("an AVIF image")
        return found
    try:
        matches = puremagic.magic_file(path)
    except (puremagic.PureError, ValueError):
        matches = []
    accepted = next(((ACCEPTED[m.mime_type], m.confidence) for m in matches
                     if m.mime_type in ACCEPTED), None)
    if accepted and not (is_text and accepted[1] < WEAK_CONFIDENCE):
        return accepted[0]
    if is_text:
        return "document", TEXT_FLAVOURS.get(Path(name).suffix.lower(), "text/plain")
    if matches:
        raise _unsupported(_article(matches[0].name.strip() or matches[0].extension))
    raise _unsupported("binary data of a kind this server does not recognise")


def _article(name: str) -> str:
    name = name.rstrip(". ")
    return name if name.lower().startswith(("a ", "an ")) else f"a file of type “{name}”"


def _unsupported(what: str) -> Refused:
    return Refused(415, "unsupported_type", f"This file is {what}, which the model cannot "
                   f"read. Accepted: {ACCEPTED_SUMMARY}.")


def clean_name(name: str) -> str:
    """The file's own name without any path or control characters, at most 255 characters."""
    name = os.path.basename(name.replace("\\", "/"))
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if len(name) > 255:
        stem, ext = os.path.splitext(name)
        name = stem[: 255 - len(ext[:20])] + ext[:20]
    return name or "file"


@dataclass
class Upload:
    """A file received whole: its temporary copy in MEDIA_ROOT, hash, size and what it is."""

    file: UploadedFile
    sha256: str
    size: int
    name: str
    kind: str
    mime_type: str


class _IncomingFile(TemporaryUploadedFile):
    """A TemporaryUploadedFile beside the media files, not in /tmp: moving it into place is
    then a rename, and a large upload never lands on a memory-backed /tmp."""

    def __init__(self, name: str, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        # Closed (and so deleted, unless storage moved it into place) with the request.
        file = tempfile.NamedTemporaryFile(suffix=".upload", dir=directory)  # noqa: SIM115
        UploadedFile.__init__(self, file, name, "application/octet-stream", 0, None, None)


class AttachmentUploadHandler(FileUploadHandler):
    """Streams the `file` field to disk in chunks, hashing and checking it as it goes.

    Refusals found while streaming (over the size limit) are kept in `refusal`: the view
    answers with them."""

    def __init__(self, request=None):
        super().__init__(request)
        self.refusal: Refused | None = None
        self.received = False

    def new_file(self, field_name, file_name, *args, **kwargs):
        if field_name != FIELD or self.received:  # one file per request, in its field
            raise SkipFile
        super().new_file(field_name, file_name, *args, **kwargs)
        self.received = True
        self.file = _IncomingFile(clean_name(file_name or ""),
                                  Path(settings.MEDIA_ROOT) / "attachments" / "incoming")
        self.sha = hashlib.sha256()
        self.size = 0
        self.text = codecs.getincrementaldecoder("utf-8")()
        self.is_text = True

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.size += len(raw_data)
        if self.size > settings.UPLOAD_MAX_BYTES:
            self.refusal = too_large()
            raise StopUpload(connection_reset=True)
        self.sha.update(raw_data)
        self.file.write(raw_data)
        if self.is_text:
            self.is_text = b"\0" not in raw_data and self._decodes(raw_data)
        return None

    def _decodes(self, data: bytes, final: bool = False) -> bool:
        try:
            self.text.decode(data, final)
        except UnicodeDecodeError:
            return False
        return True

    def file_complete(self, file_size: int) -> UploadedFile:
        self.file.flush()
        self.file.seek(0)
        self.file.size = file_size
        self.is_text = self.is_text and file_size > 0 and self._decodes(b"", final=True)
        return self.file

    def upload(self) -> Upload:
        """What was received, checked: or Refused."""
        if not self.received:
            raise Refused(400, "no_file", f"The request has no file (multipart field "
                          f"“{FIELD}”).")
        if self.size == 0:
            raise Refused(400, "empty", "This file is empty: there is nothing to send.")
        path = self.file.temporary_file_path()
        kind, mime = detect(path, is_text=self.is_text, name=self.file.name)
        return Upload(file=self.file, sha256=self.sha.hexdigest(), size=self.size,
                      name=self.file.name, kind=kind, mime_type=mime)
