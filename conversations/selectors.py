"""Reads used in more than one place (views, consumers, runner, admin)."""

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from conversations.catalogue import model_info
from conversations.models import Conversation, Turn


def conversation_for_user(*, user: Any, conversation_id: uuid.UUID | str) -> Conversation:
    """The user's own conversation, or Http404 (also for a malformed id)."""
    if not user.is_authenticated:
        raise Http404("No such conversation.")
    try:
        conversation_id = uuid.UUID(str(conversation_id))
    except ValueError:
        raise Http404("No such conversation.") from None
    try:
        return Conversation.objects.get(pk=conversation_id, owner=user)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


def conversation_list(*, user: Any, query: str = "") -> QuerySet[Conversation]:
    """The user's conversations, newest activity first, optionally filtered by title."""
    conversations = Conversation.objects.filter(owner=user).order_by("-updated")
    if query.strip():
        conversations = conversations.filter(title__icontains=query.strip())
    return conversations


def turn_list(*, conversation: Conversation) -> list[Turn]:
    """All turns of a conversation, oldest first (every branch)."""
    return list(Turn.objects.filter(conversation=conversation).order_by("created"))


def turn_ancestors(*, turn: Turn) -> list[Turn]:
    """The branch from the root down to `turn` (inclusive), loaded in one query."""
    by_id = {t.id: t for t in Turn.objects.filter(conversation_id=turn.conversation_id)}
    by_id[turn.id] = turn
    chain: list[Turn] = []
    current: Turn | None = turn
    while current is not None and len(chain) <= len(by_id):
        chain.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    chain.reverse()
    return chain


def conversation_to_dict(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "model": conversation.model,
        "model_label": model_info(conversation.model).label,
        "stateful": conversation.stateful,
        "system_instruction": conversation.system_instruction,
        "generation_settings": conversation.generation_settings,
    }


def turn_to_dict(turn: Turn) -> dict[str, Any]:
    """The turn as the websocket protocol shows it (docs/websocket.md)."""
    return {
        "id": str(turn.id),
        "parent_id": str(turn.parent_id) if turn.parent_id else None,
        "client_id": turn.client_id,
        "input": turn.input,
        "status": turn.status,
        "steps": turn.steps,
        "usage": turn.usage,
        "error": turn.error,
        "seq": turn.seq,
        "interaction_id": turn.interaction_id,
        "created": turn.created.isoformat(),
    }


def input_text(blocks: list[dict]) -> str:
    """The text blocks of a turn's input, joined."""
    return "\n".join(
        b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"
    )
