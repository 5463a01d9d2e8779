"""Import an export (conversations/exports.py) as new conversations of the importer.

Nothing in the file is trusted: every field is checked and a refusal says where and what
is wrong (and nothing is written). New ids everywhere, parent links kept; a turn that was
still running when exported arrives failed (retryable); interaction ids are dropped, so a
continued conversation replays its history instead of chaining onto an interaction the file
names; file references are relinked to the importer's own files by SHA-256 only.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversations import exports, services
from conversations.catalogue import available_models, default_model
from conversations.interactions import output_text
from conversations.models import RUNNING_STATUSES, Attachment, Conversation, Turn
from conversations.selectors import input_text

INTERRUPTED = {"code": "interrupted", "retryable": True,
               "message": "This reply was still being written when the chat was exported."}


class Refused(ValidationError):
    """The file cannot be imported; `message` says why, `code` what kind of problem."""


@dataclass
class Imported:
    conversations: list[Conversation]
    notes: list[str] = field(default_factory=list)  # what was changed on the way in


def check_size(size: int) -> None:
    limit = settings.IMPORT_MAX_BYTES
    if size > limit:
        raise Refused(f"The file is {size / 2**20:.1f} MiB; imports take at most "
                      f"{limit / 2**20:.1f} MiB (IMPORT_MAX_BYTES). Export fewer chats at "
                      "a time.", code="too_large")


def load(data: bytes) -> list[Any]:
    """The export's conversations, after checking it is one (size, JSON, format, version)."""
    check_size(len(data))
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused("This is not a chatsite export: the file is not JSON. Choose the "
                      ".json file an export downloaded.", code="not_json") from None
    if not isinstance(document, dict) or document.get("format") != exports.FORMAT:
        raise Refused("This JSON file is not a chatsite export (its \"format\" is not "
                      f"\"{exports.FORMAT}\").", code="not_an_export")
    if document.get("version") != exports.VERSION:
        raise Refused(f"This export is version {document.get('version')!r}; this server "
                      f"reads version {exports.VERSION}.", code="unknown_version")
    if not isinstance(document.get("conversations"), list):
        raise Refused("The export has no list of conversations.", code="invalid")
    return document["conversations"]


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise Refused(f"{where}: {what}", code="invalid")


def _text(raw: dict, key: str, where: str, limit: int, default: str = "") -> str:
    value = raw.get(key, default)
    _need(isinstance(value, str), where, f"“{key}” must be text.")
    _need(len(value) <= limit, where, f"“{key}” is over {limit:,} characters.")
    return value


def _time(raw: dict, where: str) -> datetime:
    value = raw.get("created")
    parsed = parse_datetime(value) if isinstance(value, str) else None
    _need(parsed is not None, where, "“created” must be a date and time (ISO 8601).")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _blocks(value: Any, where: str, key: str) -> list[dict]:
    _need(isinstance(value, list) and all(isinstance(b, dict) and isinstance(b.get("type"), str)
                                          for b in value),
          where, f"“{key}” must be a list of objects, each with a “type”.")
    return value


def _object_or_null(raw: dict, key: str, where: str) -> dict | None:
    value = raw.get(key)
    _need(value is None or isinstance(value, dict), where, f"“{key}” must be an object or null.")
    return value


def _clean_turn(raw: Any, where: str, model: str) -> dict[str, Any]:
    _need(isinstance(raw, dict), where, "a turn must be an object.")
    status = raw.get("status")
    _need(status in Turn.Status.values, where,
          f"“status” must be one of {', '.join(Turn.Status.values)}.")
    turn = {"id": _text(raw, "id", where, 100), "parent": raw.get("parent"),
            "created": _time(raw, where), "model": _text(raw, "model", where, 100, model),
            "status": status, "input": _blocks(raw.get("input"), where, "input"),
            "steps": _blocks(raw.get("steps", []), where, "steps"),
            "usage": _object_or_null(raw, "usage", where),
            "error": _object_or_null(raw, "error", where)}
    _need(turn["id"] != "", where, "“id” must not be empty.")
    _need(turn["parent"] is None or isinstance(turn["parent"], str), where,
          "“parent” must be a turn id or null.")
    if status in RUNNING_STATUSES:
        turn.update(status=Turn.Status.FAILED, error=INTERRUPTED)
    return turn


def _parents_first(turns: list[dict], where: str) -> list[dict]:
    """The turns ordered so that each comes after its parent; refuses loops and strangers."""
    by_id: dict[str, dict] = {}
    for n, turn in enumerate(turns, 1):
        _need(turn["id"] not in by_id, f"{where}, turn {n}", f"the id {turn['id']!r} repeats.")
        by_id[turn["id"]] = turn
    ordered: list[dict] = []
    placed: set[str] = set()
    for turn in turns:
        chain, seen = [], set()
        while turn is not None and turn["id"] not in placed:
            _need(turn["id"] not in seen, where, f"turn {turn['id']!r} is its own ancestor.")
            seen.add(turn["id"])
            chain.append(turn)
            parent = turn["parent"]
            _need(parent is None or parent in by_id, where,
                  f"turn {turn['id']!r} has a parent ({parent!r}) that is not in the file.")
            turn = by_id.get(parent) if parent is not None else None
        for item in reversed(chain):
            placed.add(item["id"])
            ordered.append(item)
    return ordered


def _settings(raw: dict, where: str, notes: list[str]) -> dict[str, Any]:
    model = _text(raw, "model", where, 100, default_model())
    generation = raw.get("generation_settings", {})
    _need(isinstance(generation, dict), where, "“generation_settings” must be an object.")
    if model not in {m.id for m in available_models()}:
        notes.append(f"“{raw.get('title') or 'New chat'}” used {model}, which this server "
                     f"does not offer: it continues with {default_model()}.")
        model, generation = default_model(), {**generation, "thinking_level": ""}
    stateful, tools = raw.get("stateful", True), raw.get("tools", [])
    _need(isinstance(stateful, bool), where, "“stateful” must be true or false.")
    _need(isinstance(tools, list) and all(isinstance(t, str) and len(t) <= 100 for t in tools),
          where, "“tools” must be a list of tool names.")
    return {"model": model, "generation_settings": generation, "stateful": stateful,
            "tools": tools, "response_schema": _object_or_null(raw, "response_schema", where),
            "system_instruction": _text(raw, "system_instruction", where,
                                        services.MAX_SYSTEM_INSTRUCTION)}


FILES_API = re.compile(r"^https://[^/]*googleapis\.com/.*\bfiles/", re.I)


def _relinker(owner: Any):
    """A file reference -> the importer's own file with that SHA-256, or a note. Never an
    id or URL from the file: those could name someone else's file."""
    files = {a.sha256: a for a in Attachment.objects.filter(owner=owner)}

    def relink(block: dict) -> dict:
        ref = block["attachment"]
        stored = files.get(ref.get("sha256")) if isinstance(ref.get("sha256"), str) else None
        if stored is None:
            return {"type": "text", "text": f"[A file was not imported: "
                    f"{str(ref.get('name') or block.get('type'))[:200]}]"}
        kept = {k: v for k, v in block.items() if k not in ("attachment", "data", "uri")}
        return {**kept, "mime_type": stored.mime_type, "attachment": {
            "id": str(stored.id), "url": f"/files/{stored.id}/", "name": stored.name,
            "size": stored.size}}

    def clean(value: Any) -> Any:
        if isinstance(value, dict) and FILES_API.match(str(value.get("uri", ""))):
            value = {**value, "attachment": {"name": value.get("name") or value.get("type")}}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()} if "attachment" not in value else value
        return value

    return lambda value: exports.walk_blocks(clean(value), relink)


def _create(owner: Any, raw: Any, where: str, notes: list[str], relink) -> Conversation:
    _need(isinstance(raw, dict), where, "a conversation must be an object.")
    fields = _settings(raw, where, notes)
    title = _text(raw, "title", where, 10_000)
    raw_turns = raw.get("turns", [])
    _need(isinstance(raw_turns, list), where, "“turns” must be a list.")
    turns = _parents_first([_clean_turn(t, f"{where}, turn {n}", fields["model"])
                            for n, t in enumerate(raw_turns, 1)], where)
    conversation = services.conversation_create(owner=owner, model=fields["model"], title=title)
    try:
        services.conversation_update_settings(
            conversation=conversation, generation_settings=fields["generation_settings"])
    except ValidationError as exc:
        raise Refused(f"{where}: {' '.join(exc.messages)}", code="invalid") from None
    new_ids = {t["id"]: uuid.uuid4() for t in turns}
    objects = [Turn(id=new_ids[t["id"]], conversation=conversation, client_id=str(uuid.uuid4()),
                    parent_id=new_ids.get(t["parent"]), input=relink(t["input"]),
                    steps=relink(t["steps"]), status=t["status"], model=t["model"],
                    usage=t["usage"], error=t["error"]) for t in turns]
    for turn in objects:
        turn.text = "\n".join(filter(None, (input_text(turn.input), output_text(turn.steps))))
    Turn.objects.bulk_create(objects, batch_size=500)
    for turn, t in zip(objects, turns, strict=True):
        turn.created = t["created"]  # bulk_create stamped them now (auto_now_add)
    Turn.objects.bulk_update(objects, ["created"], batch_size=500)
    leaf = raw.get("branch_leaf")
    Conversation.objects.filter(pk=conversation.pk).update(
        stateful=fields["stateful"], tools=fields["tools"], system_instruction=fields[
            "system_instruction"], response_schema=fields["response_schema"],
        branch_leaf_id=new_ids.get(leaf) if isinstance(leaf, str) else None)
    conversation.refresh_from_db()
    return conversation


@transaction.atomic
def conversations_import(*, owner: Any, data: bytes) -> Imported:
    """Every conversation of an export file as a new one of `owner`, or none (Refused)."""
    conversations = load(data)
    _need(len(conversations) > 0, "The export", "it holds no conversations.")
    notes: list[str] = []
    relink = _relinker(owner)
    try:
        created = [_create(owner, raw, f"Conversation {n}", notes, relink)
                   for n, raw in enumerate(conversations, 1)]
    except RecursionError:
        raise Refused("The file nests its content too deeply to be a chatsite export.",
                      code="invalid") from None
    return Imported(conversations=created, notes=notes)
