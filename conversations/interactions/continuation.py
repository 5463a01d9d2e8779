"""Continuation hops (protocol 11.2): following them, and merging them into one result.

A create that ends with `requires_continuation` and a token is followed by another create
(`continues`, `next_hop_body`); the hops are then merged into one Interaction
(`merge_interactions`). `merge_usage` also sums the per-hop usage the Assembler collects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Usage breakdown lists are merged per entry key, summing the int fields (protocol 11.2).
_USAGE_LIST_KEYS = ("modality", "type")


def merge_usage(usages: Iterable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Merge per-hop usage the way the SDK does: ints summed, breakdowns merged per key."""
    hops = [u for u in usages if u]
    if len(hops) <= 1:
        return hops[0] if hops else None
    merged: dict[str, Any] = {}
    for usage in hops:
        for key, value in usage.items():
            if isinstance(value, int) and not isinstance(value, bool):
                merged[key] = merged.get(key, 0) + value
            elif isinstance(value, list):
                merged[key] = _merge_breakdown(merged.get(key) or [], value)
            else:
                merged[key] = value
    first = hops[0]
    initial = first.get("initial_input_tokens", first.get("total_input_tokens"))
    if initial is not None:
        merged["initial_input_tokens"] = initial
    return merged


def _merge_breakdown(into: list[Any], more: list[Any]) -> list[Any]:
    out = [dict(e) if isinstance(e, dict) else e for e in into]
    for entry in more:
        key = next((k for k in _USAGE_LIST_KEYS if isinstance(entry, dict) and k in entry), None)
        same = next((e for e in out if key and isinstance(e, dict) and e.get(key) == entry[key]),
                    None)
        if same is None:
            out.append(dict(entry) if isinstance(entry, dict) else entry)
            continue
        for k, v in entry.items():
            if k != key and isinstance(v, int) and not isinstance(v, bool):
                same[k] = same.get(k, 0) + v
    return out


def merge_interactions(hops: list[dict[str, Any]]) -> dict[str, Any]:
    """One Interaction dict from the continuation hops of a unary create (protocol 11.2)."""
    first, last = hops[0], hops[-1]
    merged = dict(last)
    steps: list[dict[str, Any]] = list(first.get("steps") or [])
    for hop in hops[1:]:
        steps.extend(_drop_leading_user_input(hop.get("steps") or []))
    merged["steps"] = steps
    usage = merge_usage(h.get("usage") for h in hops)
    if usage is not None:
        merged["usage"] = usage
    for key in ("previous_interaction_id", "created", "input"):
        if key in first:
            merged[key] = first[key]
        else:
            merged.pop(key, None)
    return merged


def _drop_leading_user_input(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    n = 0
    while n < len(steps) and steps[n].get("type") == "user_input":
        n += 1
    return steps[n:]


def continues(body: dict[str, Any], status: str | None, token: str | None) -> bool:
    """Whether a hop that ended with `status`/`token` is followed by another (protocol 11.2)."""
    if status != "requires_continuation" or not token:
        return False
    if token == body.get("continuation_token"):
        return False  # the same token again would loop forever
    return not (body.get("background") or "agent" in body or "agent_config" in body)


def next_hop_body(body: dict[str, Any], interaction_id: str | None, token: str
                  ) -> dict[str, Any]:
    """store=true: chain onto the hop, without input; store=false: resend the input."""
    if body.get("store") is False:
        return {**body, "continuation_token": token}
    nxt = {k: v for k, v in body.items() if k not in ("input", "previous_interaction_id")}
    return {**nxt, "continuation_token": token, "previous_interaction_id": interaction_id}
