"""The Interaction resource and the SDK's output helpers (`output_text`, `output_image`...)."""

from __future__ import annotations

from typing import Any

from .steps import Step, parse_step
from .wrappers import RawWrapper, field


def output_text(steps: list[dict[str, Any]]) -> str:
    """The SDK's `output_text`: the trailing run of text after the last user input (4.3)."""
    texts: list[str] = []
    started = False
    for step in reversed(steps):
        kind = step.get("type")
        if kind == "user_input":
            break
        if kind == "thought":
            continue
        if kind != "model_output":
            if started:
                break
            continue
        content = step.get("content") or ()
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in reversed(content):
            if block.get("type") == "text":
                texts.append(block.get("text") or "")
                started = True
            elif started:
                return "".join(reversed(texts))
    return "".join(reversed(texts))


def output_block(steps: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """The last `kind` block (image/audio/video) of the model output after the last user input."""
    for step in reversed(steps):
        if step.get("type") == "user_input":
            return None
        if step.get("type") == "model_output":
            for block in reversed(step.get("content") or ()):
                if isinstance(block, dict) and block.get("type") == kind:
                    return block
    return None


class Interaction(RawWrapper):
    """The Interaction resource (create/get/cancel), or a merge of continuation hops."""

    __slots__ = ("continuation_ids",)

    def __init__(self, raw: dict[str, Any], continuation_ids: list[str] | None = None) -> None:
        self.raw = raw
        self.continuation_ids = continuation_ids or ([raw["id"]] if raw.get("id") else [])

    id = field("id")
    status = field("status")
    usage = field("usage")
    continuation_token = field("continuation_token")
    previous_interaction_id = field("previous_interaction_id")

    @property
    def step_dicts(self) -> list[dict[str, Any]]:
        return self.raw.get("steps") or []

    @property
    def steps(self) -> list[Step]:
        return [parse_step(s) for s in self.step_dicts]

    @property
    def output_text(self) -> str:
        return output_text(self.step_dicts)

    @property
    def output_image(self) -> dict[str, Any] | None:
        return output_block(self.step_dicts, "image")

    @property
    def output_audio(self) -> dict[str, Any] | None:
        return output_block(self.step_dicts, "audio")

    @property
    def output_video(self) -> dict[str, Any] | None:
        return output_block(self.step_dicts, "video")
