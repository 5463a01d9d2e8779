"""The checks of a conversation's options (generation settings, tools, response schema) and
of a reply against its schema. Pure: error messages in, nothing written (services.py writes).

The numeric ranges are the API's (protocol section 3.3), not this server's limits: a value
outside them would only come back as a 400 from upstream, after the person pressed Send.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any

from jsonschema import SchemaError
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from conversations.catalogue import ASPECT_RATIOS, IMAGE_SIZES, TOOL_NAMES, Model, tool_label
from conversations.models import GENERATION_SETTINGS

THINKING_LEVELS = ("", "minimal", "low", "medium", "high", "xhigh")
THINKING_SUMMARIES = ("", "auto", "none")
IMAGE_OUTPUTS = ("", "image")
MAX_OUTPUT_TOKENS = 65536
SEED_MIN, SEED_MAX = -(2**31), 2**31 - 1  # an int32 upstream
MAX_STOP_SEQUENCES = 5  # the API takes at most five
MAX_STOP_SEQUENCE_LENGTH = 200


def is_number(value: Any, kind: type | tuple[type, ...] = (int, float)) -> bool:
    """bool is an int subclass; JSON `true` is not a number here."""
    return isinstance(value, kind) and not isinstance(value, bool)


def _stop_sequences_error(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        return "Stop sequences are a list of non-empty texts, one per line."
    if len(value) > MAX_STOP_SEQUENCES:
        return (f"At most {MAX_STOP_SEQUENCES} stop sequences are allowed; "
                f"this has {len(value)}.")
    if any(len(s) > MAX_STOP_SEQUENCE_LENGTH for s in value):
        return f"A stop sequence may be at most {MAX_STOP_SEQUENCE_LENGTH} characters long."
    return None


def _choice(field: str, values: Iterable[str]) -> tuple[Callable[[Any], bool], str]:
    values = tuple(values)
    return (lambda v: v in values,
            f"{field} must be one of: {', '.join(v for v in values if v)} (or empty).")


# Per setting: (is it valid, the message when not). stop_sequences has its own messages.
VALUE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "temperature": (lambda v: is_number(v) and 0 <= v <= 2,
                    "Temperature must be a number between 0 and 2."),
    "top_p": (lambda v: is_number(v) and 0 <= v <= 1, "Top-p must be a number between 0 and 1."),
    "seed": (lambda v: is_number(v, int) and SEED_MIN <= v <= SEED_MAX,
             f"The seed must be a whole number between {SEED_MIN:,} and {SEED_MAX:,}."),
    "max_output_tokens": (
        lambda v: is_number(v, int) and 1 <= v <= MAX_OUTPUT_TOKENS,
        f"Max output tokens must be a whole number between 1 and {MAX_OUTPUT_TOKENS}."),
    "thinking_level": _choice("Thinking level", THINKING_LEVELS),
    "thinking_summaries": _choice("Thought summaries", THINKING_SUMMARIES),
    "aspect_ratio": _choice("Aspect ratio", ("", *ASPECT_RATIOS)),
    "image_size": _choice("Image size", ("", *IMAGE_SIZES)),
    "image_output": _choice("Image output", IMAGE_OUTPUTS),
}


def is_unset(key: str, value: Any) -> bool:
    return value is None or value == GENERATION_SETTINGS[key] or value == []


def generation_errors(values: dict[str, Any], model: Model) -> dict[str, str]:
    """Error messages by field for generation settings meant for `model`; empty when valid."""
    errors: dict[str, str] = {}
    unknown = set(values) - set(GENERATION_SETTINGS)
    if unknown:
        errors["generation_settings"] = f"Unknown settings: {', '.join(sorted(unknown))}."
    for key, value in values.items():
        if key in unknown or is_unset(key, value):
            continue
        if key == "stop_sequences":
            message = _stop_sequences_error(value)
        else:
            valid, message = VALUE_CHECKS[key]
            message = None if valid(value) else message
        why_not = model.why_not(key)
        if message is None and why_not:
            message = f"{why_not} Leave it at the model's default, or choose another model."
        if message:
            errors[key] = message
    return errors


def tools_error(tools: Any, model: Model, *, before: list[str],
                disabled: frozenset[str]) -> str | None:
    """Why a conversation may not switch these tools on. Tools it had before and the model
    does not take are kept (they are not sent): only newly switched-on ones must fit."""
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        return "Tools are a list of tool names."
    unknown = [t for t in tools if t not in TOOL_NAMES]
    if unknown:
        return f"Unknown tools: {', '.join(unknown)}. Known: {', '.join(TOOL_NAMES)}."
    off = [t for t in tools if t in disabled]
    if off:
        return disabled_tools_message(off)
    for name in tools:
        why_not = model.why_not(name)
        if name not in before and why_not:
            return f"{tool_label(name)}: {why_not}"
    return None


def disabled_tools_message(names: list[str]) -> str:
    labels = ", ".join(map(tool_label, names))
    verb = "is" if len(names) == 1 else "are"
    return (f"{labels} {verb} turned off on this server by its administrator: "
            "reload the page and save again without it.")


def schema_error(schema: Any, model: Model, *, limit: int) -> str | None:
    """Why this JSON Schema cannot be used for structured output; None when it can."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        return ('A response schema is a JSON object, such as {"type": "object", '
                '"properties": {"name": {"type": "string"}}}.')
    size = len(json.dumps(schema, ensure_ascii=False, separators=(",", ":")).encode())
    if size > limit:
        return (f"The schema is {size:,} bytes of JSON; this server takes at most {limit:,} "
                "(MAX_RESPONSE_SCHEMA_BYTES). Shorten it, e.g. drop long descriptions.")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return f"This is not a valid JSON Schema: {exc.message}{_at(exc.path)}."
    why_not = model.why_not("response_schema")
    if why_not:
        return f"{why_not} Remove the schema, or choose another model."
    return None


def _at(path: Iterable[Any]) -> str:
    pointer = "/".join(str(part) for part in path)
    return f" (at /{pointer})" if pointer else ""


def reply_text(steps: list[dict]) -> str:
    """The text of a reply: its model_output text blocks, joined."""
    return "".join(block.get("text") or "" for step in steps
                   if isinstance(step, dict) and step.get("type") == "model_output"
                   for block in step.get("content") or []
                   if isinstance(block, dict) and block.get("type") == "text")


def check_output(steps: list[dict], schema: dict) -> dict[str, Any]:
    """How a finished reply fares against the schema it was asked to follow."""
    text = reply_text(steps)
    try:
        value = json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        reason = getattr(exc, "msg", str(exc))
        return {"valid": False, "error": f"The reply is not valid JSON: {reason}{where}."}
    try:
        error = best_match(validator_for(schema)(schema).iter_errors(value))
    except SchemaError as exc:  # saved before this check existed, or edited by hand
        return {"valid": False, "error": f"The schema could not be used: {exc.message}."}
    if error is not None:
        return {"valid": False,
                "error": f"The reply does not match the schema: {error.message}"
                         f"{_at(error.absolute_path)}."}
    return {"valid": True, "error": None}
