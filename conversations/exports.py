"""Conversations as files: JSON (everything, re-importable: conversations/imports.py) and
Markdown (the branch on screen, for reading).

JSON holds every turn of every branch with its parent, input, complete steps, status,
usage, error and times. Files (attachments) are referenced by SHA-256, name, type and size;
their bytes are not in the export. Importing relinks a reference to the importer's own file
with the same SHA-256, and turns any other into a note saying which file is missing.
"""

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.text import slugify

from conversations import selectors
from conversations.catalogue import model_info
from conversations.models import Attachment, Conversation, Turn

FORMAT = "chatsite-conversations"
VERSION = 1


def walk_blocks(value: Any, fn: Callable[[dict], dict]) -> Any:
    """`value` with every content block that refers to a stored file (it has an
    `attachment` object) replaced by `fn(block)`, at any depth of steps and content."""
    if isinstance(value, list):
        return [walk_blocks(item, fn) for item in value]
    if isinstance(value, dict):
        if isinstance(value.get("attachment"), dict):
            return fn(value)
        return {key: walk_blocks(item, fn) for key, item in value.items()}
    return value


def _attachment_refs(conversation: Conversation) -> Callable[[dict], dict]:
    """Blocks' `attachment` (this server's id and url) -> a reference any server can match."""
    files = {str(a.id): a for a in Attachment.objects.filter(owner=conversation.owner_id)}

    def ref(block: dict) -> dict:
        attachment = block["attachment"]
        stored = files.get(str(attachment.get("id")))
        return {**block, "attachment": {
            "sha256": stored.sha256 if stored else None,
            "name": stored.name if stored else attachment.get("name", ""),
            "mime_type": stored.mime_type if stored else block.get("mime_type", ""),
            "size": stored.size if stored else attachment.get("size"),
        }}
    return ref


def _turn_json(turn: Turn, ref: Callable[[dict], dict]) -> dict[str, Any]:
    return {
        "id": str(turn.id),
        "parent": str(turn.parent_id) if turn.parent_id else None,
        "created": turn.created.isoformat(),
        "model": turn.model,
        "status": turn.status,
        "input": walk_blocks(turn.input, ref),
        "steps": walk_blocks(turn.steps, ref),
        "usage": turn.usage,
        "error": turn.error,
    }


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """One conversation, whole: settings and every turn of every branch, oldest first."""
    ref = _attachment_refs(conversation)
    turns = Turn.objects.filter(conversation=conversation).order_by("created", "id")
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "model": conversation.model,
        "system_instruction": conversation.system_instruction,
        "generation_settings": conversation.generation_settings,
        "stateful": conversation.stateful,
        "tools": conversation.tools,
        "response_schema": conversation.response_schema,
        "created": conversation.created.isoformat(),
        "updated": conversation.updated.isoformat(),
        "branch_leaf": str(selectors.branch_leaf(conversation=conversation) or "") or None,
        "turns": [_turn_json(t, ref) for t in turns.iterator()],
    }


def export_json(conversations: Iterable[Conversation]) -> bytes:
    """The export file: the same shape for one conversation or many."""
    document = {"format": FORMAT, "version": VERSION, "exported": timezone.now().isoformat(),
                "conversations": [conversation_json(c) for c in conversations]}
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


# --- Markdown -----------------------------------------------------------------------------


class _Footnotes:
    """Cited sources, numbered once per document in order of first citation."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[int, str]] = {}

    def number(self, url: str, title: str) -> int:
        if url not in self.sources:
            self.sources[url] = (len(self.sources) + 1, title or urlsplit(url).hostname or url)
        return self.sources[url][0]

    def markdown(self) -> str:
        return "\n".join(f"[^{n}]: [{_escape_link_text(title)}](<{url}>)"
                         for url, (n, title) in self.sources.items())


def _escape_link_text(text: str) -> str:
    return re.sub(r"([\[\]\\])", r"\\\1", " ".join(text.split()))


def _is_web_url(url: Any) -> bool:
    return isinstance(url, str) and re.match(r"https?://[^\s<>]+$", url, re.I) is not None


def _cited(text: str, annotations: Any, notes: _Footnotes) -> str:
    """`text` with a footnote mark at the end of each cited span; the offsets are UTF-8
    byte offsets (half-open), moved forward off the middle of a character."""
    data = text.encode()
    marks: dict[int, list[int]] = {}
    for a in annotations if isinstance(annotations, list) else ():
        if not (isinstance(a, dict) and a.get("type") == "url_citation"
                and _is_web_url(a.get("url")) and isinstance(a.get("end_index"), int)):
            continue
        at = min(max(a["end_index"], 0), len(data))
        while at < len(data) and data[at] & 0xC0 == 0x80:
            at += 1
        n = notes.number(a["url"], str(a.get("title") or ""))
        if n not in marks.setdefault(at, []):
            marks[at].append(n)
    out, start = [], 0
    for at in sorted(marks):
        out.append(data[start:at].decode(errors="replace"))
        out.extend(f"[^{n}]" for n in marks[at])
        start = at
    out.append(data[start:].decode(errors="replace"))
    return "".join(out)


def _block_markdown(block: Any, notes: _Footnotes) -> str:
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return _cited(str(block.get("text") or ""), block.get("annotations"), notes)
    attachment = block.get("attachment") if isinstance(block.get("attachment"), dict) else {}
    name = _escape_link_text(str(attachment.get("name") or block.get("type") or "file"))
    url = attachment.get("url")
    if isinstance(url, str) and url.startswith("/files/"):
        return f"![{name}](<{url}>)" if block.get("type") == "image" else f"[{name}](<{url}>)"
    return f"*[{name}]*"


def _content_markdown(content: Any, notes: _Footnotes) -> str:
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return "\n\n".join(filter(None, (_block_markdown(b, notes) for b in blocks)))


def _fence(text: str, language: str = "") -> str:
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks}{language}\n{text}\n{ticks}"


def _step_markdown(step: dict, notes: _Footnotes) -> str:
    """One step for a reader: what the model said and did. Thoughts are left out (JSON
    keeps them); so are tool results, which are machine-shaped and often long."""
    kind = step.get("type")
    arguments = step.get("arguments") if isinstance(step.get("arguments"), dict) else {}
    if kind == "model_output":
        return _content_markdown(step.get("content"), notes)
    if kind == "function_call":
        return f"> Called `{step.get('name', '')}` with `{json.dumps(arguments)}`"
    if kind == "google_search_call":
        queries = ", ".join(f"“{q}”" for q in arguments.get("queries") or [])
        return f"> Searched the web{': ' + queries if queries else ''}"
    if kind == "code_execution_call":
        return _fence(str(arguments.get("code") or ""), str(arguments.get("language") or ""))
    if kind == "thought" or str(kind).endswith("_result"):
        return ""
    return f"> *[{kind} step, not shown in Markdown]*"


ENDINGS = {"failed": "The reply failed", "cancelled": "The reply was stopped",
           "incomplete": "The reply is incomplete", "in_progress": "The reply was being written",
           "queued": "The reply had not started"}


def _turn_markdown(turn: Turn, notes: _Footnotes) -> str:
    parts = ["## You", _content_markdown(turn.input, notes) or "*(no text)*",
             f"## {model_info(turn.model).label if turn.model else 'Assistant'}"]
    parts.extend(filter(None, (_step_markdown(s, notes) for s in turn.steps
                               if isinstance(s, dict))))
    if turn.status in ENDINGS:
        message = (turn.error or {}).get("message") if isinstance(turn.error, dict) else ""
        parts.append(f"*{ENDINGS[turn.status]}{': ' + message if message else '.'}*")
    return "\n\n".join(parts)


def conversation_markdown(conversation: Conversation) -> str:
    """The branch on screen as a readable document, citations as footnotes."""
    leaf = selectors.branch_leaf(conversation=conversation)
    turns = selectors.turn_ancestors(turn=Turn.objects.get(pk=leaf)) if leaf else []
    notes = _Footnotes()
    body = [_turn_markdown(t, notes) for t in turns]
    head = (f"# {conversation.title or 'New chat'}\n\n*{model_info(conversation.model).label}"
            f" · {timezone.localtime(conversation.created):%Y-%m-%d %H:%M}*")
    return "\n\n".join([head, *body, notes.markdown()]).rstrip() + "\n"


# --- files --------------------------------------------------------------------------------


def filename(conversation: Conversation, extension: str) -> str:
    return f"{slugify(conversation.title)[:60] or 'chat'}-{str(conversation.id)[:8]}.{extension}"


def export_markdown_zip(conversations: Iterable[Conversation]) -> bytes:
    """Several conversations as Markdown: one file each, in a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for conversation in conversations:
            archive.writestr(filename(conversation, "md"), conversation_markdown(conversation))
    return buffer.getvalue()


def export_name(extension: str, when: datetime | None = None) -> str:
    return f"chats-{timezone.localtime(when or timezone.now()):%Y-%m-%d}.{extension}"
