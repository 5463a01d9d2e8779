"""Structured logs: the ids of what a log line is about, and one JSON object per line.

The ids live in context variables: a middleware sets the request id for each HTTP request
and each websocket connection, a turn's run sets its turn and conversation ids. asyncio
tasks and sync_to_async threads copy the context they start in, so whatever a request or
a turn does later carries them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
turn_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("turn_id", default=None)
conversation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "conversation_id", default=None)
CONTEXT = {"request_id": request_id, "turn_id": turn_id, "conversation_id": conversation_id}

# An incoming X-Request-ID is kept only if it looks like an id (a proxy's hex, a UUID):
# anything else could forge log lines or carry a payload into whoever reads them.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# What every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", *CONTEXT}


def bind_turn(turn: str, conversation: str) -> None:
    """Stamp the current task's log lines (and the tasks it starts) with a turn's ids."""
    turn_id.set(turn)
    conversation_id.set(conversation)


def unbound() -> contextvars.Context:
    """A copy of the current context without ids, for a task that serves everyone (one
    started by whoever first needed it would otherwise stamp its lines with their ids)."""
    context = contextvars.copy_context()
    for var in CONTEXT.values():
        context.run(var.set, None)
    return context


def request_id_from(header: str | None) -> str:
    """The incoming id if it is sane, else a fresh one."""
    if header and _SANE_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Copies the known ids onto each record, so any formatter (or test) can read them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in CONTEXT.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception, ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for name, var in CONTEXT.items():
            value = getattr(record, name, None) or var.get()
            if value:
                entry[name] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        # default=str: Django puts the request object on its records; a line must never fail.
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(log_format: str, level: str) -> dict:
    """settings.LOGGING for LOG_FORMAT `plain` or `json`."""
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "chatsite.logs.JsonFormatter"},
    }
    if log_format not in formatters:
        raise ValueError(f"LOG_FORMAT must be plain or json, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "chatsite.logs.ContextFilter"}},
        "formatters": {"main": formatters[log_format]},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main",
                                 "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {"conversations": {"level": level}, "chatsite": {"level": level}},
    }
