"""Typed, thin wrappers over the raw JSON of the Interactions API (events, steps, content).

Every wrapper keeps the dict it was built from in `.raw` and `to_dict()` returns that very dict,
so unknown fields and unknown types survive a round trip untouched. Dispatch is by table lookup
on `event_type` / `type`; anything unknown becomes an `Unknown*` wrapper, never an error.
This module holds the shared base; the wrappers live in `content`, `steps`, `deltas`,
`events` and `interaction`.
"""

from __future__ import annotations

from typing import Any


def pick(table: dict[str, Any], key: Any, default: Any) -> Any:
    """`table[key]`, or `default` for an unknown (or not even hashable) key."""
    try:
        return table.get(key, default)
    except TypeError:
        return default


def field(name: str) -> property:
    """A read-only property returning `raw[name]` (or None)."""
    return property(lambda self: self.raw.get(name), doc=f"The raw `{name}` field.")


class RawWrapper:
    """Base: holds the raw dict; equality and serialisation go through it."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def to_dict(self) -> dict[str, Any]:
        return self.raw

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.raw == self.raw  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"
