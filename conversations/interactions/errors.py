"""Exceptions of the Interactions API layer; every message is fit to show a user."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .retry import RETRYABLE_STATUS, parse_retry_after


class InteractionsError(Exception):
    """Base class. `code` is machine-readable, `retryable` says whether trying again may help."""

    code: int | str | None = None
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The `{code, message, retryable}` shape stored on a failed turn."""
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


class APIError(InteractionsError):
    """An HTTP error answer with Google's error body (`code`, `message`, `status`, `details`)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: int | str | None = None,
        status: str | None = None,
        details: list[Any] | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code if code is not None else status_code
        self.status = status
        self.details = details or []
        self.body = body
        self.retry_after = retry_after
        self.retryable = status_code in RETRYABLE_STATUS

    @classmethod
    def from_response(cls, response: httpx.Response) -> APIError:
        """Build the right subclass from a non-200 response whose body has been read."""
        body = _parse_body(response)
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        status_code = response.status_code
        detail = err.get("message") or (body if isinstance(body, str) and body else "")
        detail = (detail or response.reason_phrase or "no details")[:300]
        subclass = _subclass_for(status_code)
        return subclass(
            f"{subclass.summary} (HTTP {status_code}): {detail}",
            status_code=status_code,
            code=err.get("code"),
            status=err.get("status"),
            details=err.get("details") if isinstance(err.get("details"), list) else [],
            body=body,
            retry_after=parse_retry_after(response.headers),
        )

    summary = "The Gemini API returned an error"


class BadRequestError(APIError):
    summary = "The Gemini API rejected the request"


class AuthenticationError(APIError):
    summary = "The Gemini API key was not accepted"


class PermissionDeniedError(APIError):
    summary = "The Gemini API denied access"


class NotFoundError(APIError):
    summary = "Not found on the Gemini API"


class ConflictError(APIError):
    summary = "The Gemini API reported a conflict"


class RateLimitError(APIError):
    summary = "Rate limited by the Gemini API; try again shortly"


class ServerError(APIError):
    summary = "The Gemini API had a server error; try again shortly"


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def _subclass_for(status_code: int) -> type[APIError]:
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIError)


def _parse_body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return response.text


class StreamError(InteractionsError):
    """An in-band `error` event (the generation failed server-side, mid-stream)."""

    def __init__(self, code: int | str | None, message: str, error: dict[str, Any] | None = None):
        super().__init__(f"The model stopped with an error ({code}): {message or 'no details'}")
        self.code = code
        self.error = error or {}

    @classmethod
    def from_error(cls, error: dict[str, Any]) -> StreamError:
        return cls(error.get("code"), error.get("message") or "", error)


class ConnectionFailed(InteractionsError):
    """The Gemini API could not be reached (after retries)."""

    code = "connection_failed"
    retryable = True


class StreamInterrupted(InteractionsError):
    """A stream dropped mid-way and could not be resumed."""

    code = "stream_interrupted"
    retryable = True

    def __init__(
        self, message: str, *, interaction_id: str | None = None, last_event_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.interaction_id = interaction_id
        self.last_event_id = last_event_id


class FileError(InteractionsError):
    """A Files API upload failed, or the file never became ACTIVE."""

    code = "file_error"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
