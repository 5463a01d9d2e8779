"""Gemini Interactions API layer: client, typed events, stream assembler, errors (no Django)."""

from .assembler import Assembler
from .client import API_REVISION, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, InteractionsClient
from .content import ANNOTATION_TYPES, CONTENT_TYPES, parse_annotation, parse_content
from .continuation import merge_interactions, merge_usage
from .deltas import DELTA_TYPES, parse_delta
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
    EVENT_TYPES,
    ErrorEvent,
    Event,
    InteractionCompleted,
    InteractionCreated,
    InteractionStatusUpdate,
    LegacyStatusEvent,
    StepDelta,
    StepStart,
    StepStop,
    UnknownEvent,
    parse_event,
)
from .interaction import Interaction, output_text
from .retry import RetryPolicy
from .steps import STEP_TYPES, parse_step

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
