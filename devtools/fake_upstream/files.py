"""The Files API part of the fake: resumable upload sessions and File resources (camelCase)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.fake_upstream.config import Config
from devtools.fake_upstream.wire import Request, Response, error

ID_ALPHABET = string.ascii_lowercase + string.digits


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_file_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(12))


@dataclass
class UploadSession:
    file_id: str
    version: str
    display_name: str | None
    mime_type: str
    size: int | None
    data: bytearray | None = field(default_factory=bytearray)  # None: not kept, only hashed
    received: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)

    def feed(self, piece: bytes) -> None:
        if self.data is not None:
            self.data += piece
        self.sha256.update(piece)
        self.received += len(piece)


@dataclass
class StoredFile:
    """An uploaded file; it reports PROCESSING until enough GETs or seconds have passed,
    then `outcome` (ACTIVE, or FAILED); past `expires` it is gone."""

    resource: dict[str, Any]
    data: bytes | None
    created: float
    expires: float
    processing_gets: int
    processing_seconds: float
    outcome: str = "ACTIVE"
    gets: int = 0

    @property
    def gone(self) -> bool:
        return time.time() >= self.expires

    def view(self, *, count_get: bool) -> dict[str, Any]:
        ready = (self.gets >= self.processing_gets
                 and time.time() - self.created >= self.processing_seconds)
        if count_get:
            self.gets += 1
        if ready and self.resource["state"] == "PROCESSING":
            self.resource["state"] = self.outcome
            self.resource["updateTime"] = rfc3339(time.time())
            if self.outcome == "FAILED":
                self.resource["error"] = {"code": 3, "message": "The file could not be "
                                          "processed (the fake was told to fail it)."}
        return dict(self.resource)


class FileStore:
    """Upload sessions and files of one fake server."""

    def __init__(self) -> None:
        self.sessions: dict[str, UploadSession] = {}
        self.files: dict[str, StoredFile] = {}

    def start(self, req: Request, version: str, base_url: str, config: Config) -> Response:
        if req.headers.get("x-goog-upload-protocol", "").lower() != "resumable":
            return error(400, "Only X-Goog-Upload-Protocol: resumable is supported.")
        if req.headers.get("x-goog-upload-command", "").lower() != "start":
            return error(400, "The first request of an upload must carry command 'start'.")
        meta = req.json.get("file") if isinstance(req.json, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        file_id = str(meta.get("name") or "").removeprefix("files/") or new_file_id()
        if file_id in self.files:
            return error(409, f"File files/{file_id} already exists.")
        size = (req.headers.get("x-goog-upload-header-content-length")
                or meta.get("size_bytes") or meta.get("sizeBytes"))
        mime = (req.headers.get("x-goog-upload-header-content-type")
                or meta.get("mime_type") or meta.get("mimeType") or "application/octet-stream")
        upload_id = secrets.token_urlsafe(18)
        self.sessions[upload_id] = UploadSession(
            file_id, version, meta.get("display_name") or meta.get("displayName"), mime,
            int(size) if size is not None else None,
            bytearray() if config.keep_upload_bytes else None)
        url = f"{base_url}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable"
        return Response(200, b"", {"x-goog-upload-url": url, "x-goog-upload-status": "active",
                                   "x-goog-upload-chunk-granularity": str(8 * 1024 * 1024)})

    def chunk(self, req: Request, base_url: str, config: Any) -> Response:
        session = self.sessions.get(req.query["upload_id"])
        if session is None:
            return error(404, "No such upload session (finished, cancelled or never started).")
        commands = _commands(req)
        if "upload" in commands and req.streamed is None:  # else sink_for took it already
            offset = req.headers.get("x-goog-upload-offset")
            if not _offset_matches(req, session):
                return error(400, f"Invalid X-Goog-Upload-Offset {offset!r}: the server has "
                                  f"received {session.received} bytes.")
            session.feed(req.body)
        received = {"x-goog-upload-size-received": str(session.received)}
        if "finalize" not in commands:
            if not commands & {"upload", "query"}:
                command = req.headers.get("x-goog-upload-command", "")
                return error(400, f"Unknown upload command {command!r}.")
            return Response(200, b"", {"x-goog-upload-status": "active", **received})
        if session.size is not None and session.size != session.received:
            return error(400, f"Upload finalized with {session.received} bytes; "
                              f"{session.size} were declared.")
        del self.sessions[req.query["upload_id"]]
        stored = self._store(session, base_url, config)
        return Response(200, {"file": stored.view(count_get=False)},
                        {"x-goog-upload-status": "final", **received})

    def _store(self, session: UploadSession, base_url: str, config: Any) -> StoredFile:
        now = time.time()
        expires = now + config.file_retention_seconds
        resource = {
            "name": f"files/{session.file_id}",
            "mimeType": session.mime_type,
            "sizeBytes": str(session.received),
            "createTime": rfc3339(now), "updateTime": rfc3339(now),
            "expirationTime": rfc3339(expires),
            "sha256Hash": base64.b64encode(session.sha256.hexdigest().encode()).decode(),
            "uri": f"{base_url}/{session.version}/files/{session.file_id}",
            "state": "PROCESSING",
            "source": "UPLOADED",
        }
        if session.display_name:
            resource["displayName"] = session.display_name
        data = bytes(session.data) if session.data is not None else None
        stored = StoredFile(resource, data, now, expires, config.file_processing_gets,
                            config.file_processing_seconds, config.file_processing_outcome)
        self.files[session.file_id] = stored
        return stored

    def sink_for(self, req: Request) -> Callable[[bytes], None] | None:
        """Where an upload chunk's body goes when bytes are not kept: straight into its
        session (a wrong offset is read whole, and refused by `chunk`)."""
        session = self.sessions.get(req.query.get("upload_id", ""))
        if (session is None or session.data is not None or not UPLOAD_PATH.match(req.path)
                or "upload" not in _commands(req) or not _offset_matches(req, session)):
            return None
        return session.feed

    def live(self, file_id: str) -> StoredFile | None:
        stored = self.files.get(file_id)
        if stored is not None and stored.gone:
            del self.files[file_id]  # expired: deleted, as Google deletes it
            return None
        return stored

    def expire(self, file_id: str) -> None:
        self.files[file_id].expires = time.time()

    def get(self, file_id: str) -> Response:
        stored = self.live(file_id)
        if stored is None:
            return error(404, f"File files/{file_id} does not exist.")
        return Response(200, stored.view(count_get=True))

    def check_use(self, value: Any, base_url: str) -> Response | None:
        """The error the create endpoint answers when `input` refers to a file of ours
        that is gone or not ACTIVE (the first one found), else None.

        What the real service answers is not in the reference: these are the answers
        Gemini's generateContent is publicly reported to give [ext] — 403 PERMISSION_DENIED
        for a file that expired or was deleted, 400 FAILED_PRECONDITION for one still
        processing (or failed)."""
        for uri in _uris(value):
            match = FILE_URI.match(uri.removeprefix(base_url))
            if not uri.startswith(base_url + "/") or match is None:
                continue
            name = f"files/{match['id']}"
            stored = self.live(match["id"])
            if stored is None:
                return error(403, f"You do not have permission to access the File {name} or "
                                  "it may not exist.")
            state = stored.view(count_get=False)["state"]
            if state != "ACTIVE":
                return error(400, f"The File {name} is not in an ACTIVE state and usage is "
                                  "not allowed.", name="FAILED_PRECONDITION")
        return None

    def delete(self, file_id: str) -> Response:
        if self.live(file_id) is None or self.files.pop(file_id, None) is None:
            return error(404, f"File files/{file_id} does not exist.")
        return Response(200, {})

    def list(self) -> Response:
        live = [f for f in map(self.live, list(self.files)) if f is not None]
        return Response(200, {"files": [f.view(count_get=False) for f in live]})


UPLOAD_PATH = re.compile(r"^/upload/v[0-9a-z]+/files$")
FILE_URI = re.compile(r"^/v[0-9a-z]+/files/(?P<id>[a-z0-9-]+)$")


def _commands(req: Request) -> set[str]:
    return {c.strip() for c in req.headers.get("x-goog-upload-command", "").lower().split(",")}


def _offset_matches(req: Request, session: UploadSession) -> bool:
    offset = req.headers.get("x-goog-upload-offset")
    return offset is not None and offset.isdigit() and int(offset) == session.received


def _uris(value: Any) -> Iterator[str]:
    """Every `uri` of a content block anywhere in a create body's `input`."""
    if isinstance(value, dict):
        if isinstance(value.get("uri"), str):
            yield value["uri"]
        for item in value.values():
            yield from _uris(item)
    elif isinstance(value, list):
        for item in value:
            yield from _uris(item)


class FileRoutes:
    """FakeUpstream's Files API handlers (a mixin: the state lives on the server)."""

    base_url: str
    config: Config
    _files: FileStore

    async def _do_upload(self, req: Request, v: str) -> Response:
        if "upload_id" in req.query:
            return self._files.chunk(req, self.base_url, self.config)
        return self._files.start(req, v, self.base_url, self.config)

    async def _do_list_files(self, req: Request, v: str) -> Response:
        return self._files.list()

    async def _do_get_file(self, req: Request, v: str, id: str) -> Response:
        return self._files.get(id)

    async def _do_delete_file(self, req: Request, v: str, id: str) -> Response:
        return self._files.delete(id)
