"""Gemini Interactions API layer: client, typed events, stream assembler, errors (no Django)."""

from .assembler import Assembler, merge_interactions, merge_usage
from .client import API_REVISION, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, InteractionsClient
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionFailed,
    FileError,
    InteractionsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamError,
    StreamInterrupted,
)
from .events import (
    ANNOTATION_TYPES,
    CONTENT_TYPES,
    DELTA_TYPES,
    EVENT_TYPES,
    STEP_TYPES,
    ErrorEvent,
    Event,
    Interaction,
    InteractionCompleted,
    InteractionCreated,
    InteractionStatusUpdate,
    LegacyStatusEvent,
    StepDelta,
    StepStart,
    StepStop,
    UnknownEvent,
    output_text,
    parse_annotation,
    parse_content,
    parse_delta,
    parse_event,
    parse_step,
)
from .retry import RetryPolicy

__all__ = [
    "ANNOTATION_TYPES", "API_REVISION", "CONTENT_TYPES", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT",
    "DELTA_TYPES", "EVENT_TYPES", "STEP_TYPES", "APIError", "Assembler", "AuthenticationError",
    "BadRequestError", "ConflictError", "ConnectionFailed", "ErrorEvent", "Event", "FileError",
    "Interaction", "InteractionCompleted", "InteractionCreated", "InteractionStatusUpdate",
    "InteractionsClient", "InteractionsError", "LegacyStatusEvent", "NotFoundError",
    "PermissionDeniedError", "RateLimitError", "RetryPolicy", "ServerError", "StepDelta",
    "StepStart", "StepStop", "StreamError", "StreamInterrupted", "UnknownEvent",
    "merge_interactions", "merge_usage", "output_text", "parse_annotation", "parse_content",
    "parse_delta", "parse_event", "parse_step",
]
