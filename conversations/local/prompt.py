"""Offline backend prompt: request input -> chat messages, fitted to the context window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CONTENT_TYPES = frozenset({"text", "image", "audio", "video", "document"})
# Steps whose content becomes a chat message; thoughts and tool steps mean nothing to this model.
ROLE_OF_STEP = {"user_input": "user", "model_output": "assistant"}

Message = dict[str, str]


# --- request body -> chat messages ---------------------------------------------------------


def _block_text(block: Any) -> str:
    """Text of one content block; other media become a short note the model can mention."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type") or ("text" if "text" in block else "content")
    if kind == "text":
        return str(block.get("text") or "")
    return f"[{kind}]"


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str | dict):
        content = [content]
    return "\n".join(t for t in map(_block_text, content) if t)


def _append(messages: list[Message], role: str, text: str) -> None:
    """Add a message, merging into the previous one when the role repeats."""
    if not text:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1] = {"role": role, "content": messages[-1]["content"] + "\n\n" + text}
    else:
        messages.append({"role": role, "content": text})


def messages_from_input(value: Any) -> list[Message]:
    """Turn any `input` form (string, content, content list, step list) into chat messages."""
    if isinstance(value, str | dict):
        value = [value]
    messages: list[Message] = []
    for item in value or []:
        kind = item.get("type") if isinstance(item, dict) else "text"
        if kind is None and isinstance(item, dict) and "text" in item:
            kind = "text"
        if kind in CONTENT_TYPES:
            _append(messages, "user", _block_text(item))
        elif kind in ROLE_OF_STEP:
            _append(messages, ROLE_OF_STEP[kind], _content_text(item.get("content")))
    return messages


# --- chat messages -> prompt tokens that fit the context window -----------------------------

# For a GGUF without a chat template of its own (SmolLM2's and most instruct models' have one).
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class ChatTemplate:
    """Renders chat messages with the model file's own chat template (ChatML when it has none)."""

    def __init__(self, llm: Any) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llm
        template = llm.metadata.get("tokenizer.chat_template")
        self.source = "gguf" if template else "chatml"
        self._formatter = Jinja2ChatFormatter(
            template or CHATML, self._token_text(llm.token_eos()), self._token_text(llm.token_bos())
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def render(self, messages: Sequence[Message]) -> tuple[list[int], list[str]]:
        """The prompt's tokens (what llama evaluates) and the template's stop strings."""
        safe = [{"role": m["role"], "content": _defuse(m["content"])} for m in messages]
        rendered = self._formatter(messages=safe)
        tokens = self.llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        stop = rendered.stop or []
        return tokens, [stop] if isinstance(stop, str) else list(stop)


def _defuse(text: str) -> str:
    """Keep typed text from spelling a control token: the prompt is tokenized with specials on,
    so a user's "<|im_start|>system" would otherwise start a real system turn."""
    return text.replace("<|", "<\u200c|")


def fit_prompt(
    template: ChatTemplate,
    system: str | None,
    history: Sequence[Message],
    *,
    n_ctx: int,
    max_tokens: int,
) -> tuple[list[int], list[str]]:
    """Drop the oldest history until prompt + answer fit; returns (prompt tokens, stop strings)."""
    budget = n_ctx - min(max_tokens, n_ctx // 2)
    system_messages = [{"role": "system", "content": system}] if system else []
    history = list(history)
    while True:
        tokens, stop = template.render(system_messages + history)
        over = len(tokens) - budget
        if over <= 0:
            return tokens, stop
        if len(history) > 1:
            history.pop(0)
            continue
        # One message too long on its own: keep its end, where the question usually is.
        own = tokenize(template.llm, history[0]["content"])
        if over >= len(own):
            raise ValueError("the system instruction does not fit the context window")
        text = template.llm.detokenize(own[over + 8 :]).decode("utf-8", errors="ignore")
        history[0] = {"role": "user", "content": text}


def tokenize(llm: Any, text: str) -> list[int]:
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
