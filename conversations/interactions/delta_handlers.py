"""How each kind of delta changes the step it belongs to: small functions the Assembler calls.

Each handler takes the step dict and the raw delta, changes the step in place, and returns
what the Assembler has to do about it (it owns all the state: buffers, UI ops, unknowns):

- `True`: the step changed; the UI gets it whole;
- `False`: the delta cannot be folded; the Assembler keeps it verbatim in `unknown_deltas`;
- a `str`: a fragment of a call's JSON arguments, buffered by the Assembler until step.stop;
- `None`: nothing to fold.

Plain text is not in the table: the Assembler buffers it itself (its hot path).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .deltas import (
    DELTA_TYPES,
    ArgumentsDelta,
    Delta,
    MediaDelta,
    TextAnnotationDelta,
    TextDelta,
    ThoughtSignatureDelta,
    ThoughtSummaryDelta,
    ToolDelta,
)

Handler = Callable[[dict[str, Any], dict[str, Any]], bool | str | None]


def copy_json(obj: Any) -> Any:
    """Deep copy of JSON-like data (dicts and lists; strings are immutable and shared)."""
    if type(obj) is dict:
        return {k: copy_json(v) for k, v in obj.items()}
    if type(obj) is list:
        return [copy_json(v) for v in obj]
    return obj


def as_blocks(value: Any) -> list[Any]:
    """A step's `content` or `summary` as a list of blocks (a string becomes a text block)."""
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if isinstance(value, dict):
        return [value]
    return list(value or ())


def is_text(block: dict[str, Any]) -> bool:
    kind = block.get("type")
    return kind == "text" or (kind is None and "text" in block)


def on_annotation(step: dict[str, Any], delta: dict[str, Any]) -> bool:
    """Annotations go onto the last text block of the step's content (created if none)."""
    blocks = step.get("content")
    if not isinstance(blocks, list):
        blocks = step["content"] = as_blocks(blocks)
    block = next((b for b in reversed(blocks) if isinstance(b, dict) and is_text(b)), None)
    if block is None:
        block = {"type": "text", "text": ""}
        blocks.append(block)
    block.setdefault("annotations", []).extend(delta.get("annotations") or ())
    return True


def _on_media(step: dict[str, Any], delta: dict[str, Any]) -> bool:
    blocks = step.get("content")
    if not isinstance(blocks, list):
        blocks = step["content"] = as_blocks(blocks)
    blocks.append(dict(delta))
    return True


def _on_summary(step: dict[str, Any], delta: dict[str, Any]) -> bool:
    content = delta.get("content")
    summary = step.get("summary")
    if not isinstance(summary, list):
        summary = step["summary"] = as_blocks(summary)
    if isinstance(content, list):
        summary.extend(copy_json(content))
    elif content is not None:
        summary.append(copy_json(content))
    return True


def _on_signature(step: dict[str, Any], delta: dict[str, Any]) -> bool:
    step["signature"] = delta.get("signature")
    return True


def _on_arguments(step: dict[str, Any], delta: dict[str, Any]) -> bool | str | None:
    fragment = delta["arguments"] if "arguments" in delta else delta.get("partial_arguments")
    if isinstance(fragment, str):
        return fragment
    if isinstance(fragment, dict):
        current = step.get("arguments")
        step["arguments"] = {**current, **fragment} if isinstance(current, dict) else fragment
        return True
    return None


def _on_fields(step: dict[str, Any], delta: dict[str, Any]) -> bool:
    """Call/result deltas: their fields (arguments, result, signature...) go onto the step."""
    for key, value in delta.items():
        if key != "type":
            step[key] = copy_json(value)
    return True


def on_unknown_delta(step: dict[str, Any], delta: dict[str, Any]) -> bool:
    kind = delta.get("type")
    if kind is None or kind == step.get("type") or str(kind).endswith(("_call", "_result")):
        return _on_fields(step, delta)  # an untyped or new tool delta: same shape as known ones
    return False


_BY_DELTA_CLASS: dict[type[Delta], Handler] = {
    TextAnnotationDelta: on_annotation,
    MediaDelta: _on_media,
    ThoughtSummaryDelta: _on_summary,
    ThoughtSignatureDelta: _on_signature,
    ArgumentsDelta: _on_arguments,
    ToolDelta: _on_fields,
}

# delta type name -> handler, derived from the shared table so both always list the same names.
DELTA_HANDLERS: dict[str, Handler] = {
    name: _BY_DELTA_CLASS[cls] for name, cls in DELTA_TYPES.items() if cls is not TextDelta
}
