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


# --- chat messages -> a prompt that fits the context window ------------------------------------


def fit_messages(
    llm: Any,
    formatter: Any,
    system: str | None,
    history: Sequence[Message],
    *,
    n_ctx: int,
    max_tokens: int,
) -> tuple[list[Message], int]:
    """Drop the oldest history until prompt + answer fit; returns (messages, prompt tokens)."""
    budget = n_ctx - min(max_tokens, n_ctx // 2)
    system_messages = [{"role": "system", "content": system}] if system else []
    history = list(history)
    while (count := _prompt_tokens(llm, formatter, system_messages + history)) > budget:
        if len(history) > 1:
            history.pop(0)
            continue
        # One message too long on its own: keep its end, where the question usually is.
        tokens = tokenize(llm, history[0]["content"])
        if count - budget >= len(tokens):
            raise ValueError("the system instruction does not fit the context window")
        text = llm.detokenize(tokens[count - budget + 8 :]).decode("utf-8", errors="ignore")
        history[0] = {"role": "user", "content": text}
    return system_messages + history, count


def _prompt_tokens(llm: Any, formatter: Any, messages: list[Message]) -> int:
    """Tokens of the prompt the model's own chat template renders (what llama will evaluate)."""
    if formatter is None:
        return len(tokenize(llm, _chatml(messages)))
    rendered = formatter(messages=messages)
    prompt = rendered.prompt.encode("utf-8")
    return len(llm.tokenize(prompt, add_bos=not rendered.added_special, special=True))


def tokenize(llm: Any, text: str) -> list[int]:
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def template_formatter(llm: Any) -> Any:
    """The Jinja chat formatter llama-cpp builds from the GGUF metadata, for counting tokens."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None

    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    return Jinja2ChatFormatter(template, text(llm.token_eos()), text(llm.token_bos()))


def _chatml(messages: list[Message]) -> str:
    """Fallback prompt rendering for a GGUF without a chat template."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"
