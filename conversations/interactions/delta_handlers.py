"""How each kind of delta changes the step it belongs to (used by the Assembler).

Each handler takes (assembler, global step index, step dict, raw delta); the Assembler
dispatches on the delta's type through `DELTA_HANDLERS` and handles plain text inline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .deltas import DELTA_TYPES

if TYPE_CHECKING:
    from .assembler import Assembler


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


Handler = Callable[["Assembler", int, dict[str, Any], dict[str, Any]], None]


def _on_text(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    asm._append_text(i, delta.get("text") or "")


def _on_annotation(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    asm._annotate(i, step, delta)


def _on_media(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    blocks = step.get("content")
    if not isinstance(blocks, list):
        blocks = step["content"] = as_blocks(blocks)
    blocks.append(dict(delta))
    asm._mark(i)


def _on_summary(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    content = delta.get("content")
    summary = step.get("summary")
    if not isinstance(summary, list):
        summary = step["summary"] = as_blocks(summary)
    if isinstance(content, list):
        summary.extend(copy_json(content))
    elif content is not None:
        summary.append(copy_json(content))
    asm._mark(i)


def _on_signature(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    step["signature"] = delta.get("signature")
    asm._mark(i)


def _on_arguments(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    fragment = delta["arguments"] if "arguments" in delta else delta.get("partial_arguments")
    if isinstance(fragment, str):
        asm._args.setdefault(i, []).append(fragment)  # parsed at step.stop
        asm.changed.add(i)
    elif isinstance(fragment, dict):
        current = step.get("arguments")
        step["arguments"] = {**current, **fragment} if isinstance(current, dict) else fragment
        asm._mark(i)


def _on_fields(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    """Call/result deltas: their fields (arguments, result, signature...) go onto the step."""
    for key, value in delta.items():
        if key != "type":
            step[key] = copy_json(value)
    asm._mark(i)


def on_unknown_delta(asm: Assembler, i: int, step: dict[str, Any], delta: dict[str, Any]) -> None:
    kind = delta.get("type")
    if kind is None or kind == step.get("type") or str(kind).endswith(("_call", "_result")):
        _on_fields(asm, i, step, delta)  # an untyped or new tool delta: same shape as known ones
    else:
        asm.unknown_deltas.append((i, delta))


_BY_DELTA_CLASS: dict[str, Handler] = {
    "TextDelta": _on_text,
    "TextAnnotationDelta": _on_annotation,
    "MediaDelta": _on_media,
    "ThoughtSummaryDelta": _on_summary,
    "ThoughtSignatureDelta": _on_signature,
    "ArgumentsDelta": _on_arguments,
    "ToolDelta": _on_fields,
}

# delta type name -> handler, derived from the shared table so both always list the same names.
DELTA_HANDLERS: dict[str, Handler] = {
    name: _BY_DELTA_CLASS[cls.__name__] for name, cls in DELTA_TYPES.items()
}
