"""What a test sets: the server's knobs (Config) and injected failures (Fault)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devtools.fake_upstream.wire import Request


@dataclass
class Config:
    """Knobs settable per server or through POST /_control/config."""

    delta_interval: float = 0.0  # seconds between step.delta events (1/20 = 20 deltas/s)
    deltas: int | None = None  # echo replies padded/merged to exactly this many text deltas
    emit_timestamps: bool = False  # add "_emitted": time.time() to every SSE event's JSON
    stamp_text: bool = False  # end each text delta with "[seq:emit time]" (latency, loss, dups)
    background_delay: float = 0.2  # background runs wait this long before generating
    file_processing_gets: int = 0  # GETs that still report PROCESSING after the upload
    file_processing_seconds: float = 0.0  # ... and seconds
    file_processing_outcome: str = "ACTIVE"  # or "FAILED": what processing ends in
    file_retention_seconds: float = 48 * 3600  # then the file is gone (expirationTime)
    keep_upload_bytes: bool = True  # False: uploads are hashed and counted, not kept (bench)
    done_marker: bool = False  # echo replies end with `event: done` / `data: [DONE]`


@dataclass
class Fault:
    """An injected failure; `times` None means forever."""

    kind: str  # "status", "drop", "slow" or "malformed"
    status: int = 0
    times: int | None = 1
    method: str | None = None
    path: str | None = None  # regex searched in the request path
    after: int = 0  # drop after / malformed line at this many events of the response
    delay: float = 0.0  # slow: seconds before each event
    retry_after: str | None = "0"
    message: str | None = None

    def matches(self, req: Request) -> bool:
        return ((self.method is None or self.method.upper() == req.method)
                and (self.path is None or re.search(self.path, req.path) is not None))
