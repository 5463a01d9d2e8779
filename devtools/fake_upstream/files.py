"""The Files API part of the fake: resumable upload sessions and File resources (camelCase)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.fake_upstream.config import Config
from devtools.fake_upstream.wire import Request, Response, error

ID_ALPHABET = string.ascii_lowercase + string.digits
RETENTION = timedelta(hours=48)


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
    data: bytearray = field(default_factory=bytearray)


@dataclass
class StoredFile:
    """An uploaded file; it reports PROCESSING until enough GETs or seconds have passed."""

    resource: dict[str, Any]
    data: bytes
    created: float
    processing_gets: int
    processing_seconds: float
    gets: int = 0

    def view(self, *, count_get: bool) -> dict[str, Any]:
        ready = (self.gets >= self.processing_gets
                 and time.time() - self.created >= self.processing_seconds)
        if count_get:
            self.gets += 1
        if ready and self.resource["state"] == "PROCESSING":
            self.resource["state"] = "ACTIVE"
            self.resource["updateTime"] = rfc3339(time.time())
        return dict(self.resource)


class FileStore:
    """Upload sessions and files of one fake server."""

    def __init__(self) -> None:
        self.sessions: dict[str, UploadSession] = {}
        self.files: dict[str, StoredFile] = {}

    def start(self, req: Request, version: str, base_url: str) -> Response:
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
            int(size) if size is not None else None)
        url = f"{base_url}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable"
        return Response(200, b"", {"x-goog-upload-url": url, "x-goog-upload-status": "active",
                                   "x-goog-upload-chunk-granularity": str(8 * 1024 * 1024)})

    def chunk(self, req: Request, base_url: str, config: Any) -> Response:
        session = self.sessions.get(req.query["upload_id"])
        if session is None:
            return error(404, "No such upload session (finished, cancelled or never started).")
        command = req.headers.get("x-goog-upload-command", "")
        commands = {c.strip() for c in command.lower().split(",")}
        if "upload" in commands:
            offset = req.headers.get("x-goog-upload-offset")
            if offset is None or not offset.isdigit() or int(offset) != len(session.data):
                return error(400, f"Invalid X-Goog-Upload-Offset {offset!r}: the server has "
                                  f"received {len(session.data)} bytes.")
            session.data += req.body
        received = {"x-goog-upload-size-received": str(len(session.data))}
        if "finalize" not in commands:
            if not commands & {"upload", "query"}:
                return error(400, f"Unknown upload command {command!r}.")
            return Response(200, b"", {"x-goog-upload-status": "active", **received})
        if session.size is not None and session.size != len(session.data):
            return error(400, f"Upload finalized with {len(session.data)} bytes; "
                              f"{session.size} were declared.")
        del self.sessions[req.query["upload_id"]]
        stored = self._store(session, base_url, config)
        return Response(200, {"file": stored.view(count_get=False)},
                        {"x-goog-upload-status": "final", **received})

    def _store(self, session: UploadSession, base_url: str, config: Any) -> StoredFile:
        now, data = time.time(), bytes(session.data)
        resource = {
            "name": f"files/{session.file_id}",
            "mimeType": session.mime_type,
            "sizeBytes": str(len(data)),
            "createTime": rfc3339(now), "updateTime": rfc3339(now),
            "expirationTime": rfc3339(now + RETENTION.total_seconds()),
            "sha256Hash": base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode(),
            "uri": f"{base_url}/{session.version}/files/{session.file_id}",
            "state": "PROCESSING",
            "source": "UPLOADED",
        }
        if session.display_name:
            resource["displayName"] = session.display_name
        stored = StoredFile(resource, data, now, config.file_processing_gets,
                            config.file_processing_seconds)
        self.files[session.file_id] = stored
        return stored

    def get(self, file_id: str) -> Response:
        stored = self.files.get(file_id)
        if stored is None:
            return error(404, f"File files/{file_id} does not exist.")
        return Response(200, stored.view(count_get=True))

    def delete(self, file_id: str) -> Response:
        if self.files.pop(file_id, None) is None:
            return error(404, f"File files/{file_id} does not exist.")
        return Response(200, {})

    def list(self) -> Response:
        return Response(200, {"files": [f.view(count_get=False) for f in self.files.values()]})


class FileRoutes:
    """FakeUpstream's Files API handlers (a mixin: the state lives on the server)."""

    base_url: str
    config: Config
    _files: FileStore

    async def _do_upload(self, req: Request, v: str) -> Response:
        if "upload_id" in req.query:
            return self._files.chunk(req, self.base_url, self.config)
        return self._files.start(req, v, self.base_url)

    async def _do_list_files(self, req: Request, v: str) -> Response:
        return self._files.list()

    async def _do_get_file(self, req: Request, v: str, id: str) -> Response:
        return self._files.get(id)

    async def _do_delete_file(self, req: Request, v: str, id: str) -> Response:
        return self._files.delete(id)
