"""Reads used in more than one place (views, consumers, runner, admin)."""

import uuid
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404

from conversations.catalogue import model_info
from conversations.models import Attachment, Conversation, Turn

# Staff with this permission may read any user's conversations, and so their files.
REVIEW_PERMISSION = "conversations.review_conversation"


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


def attachment_for_user(*, user: Any, attachment_id: uuid.UUID | str) -> Attachment:
    """The user's own file (or any, for a reviewer), or Http404 (also for a malformed id)."""
    if not user.is_authenticated:
        raise Http404("No such file.")
    try:
        attachment = Attachment.objects.get(pk=uuid.UUID(str(attachment_id)))
    except (ValueError, Attachment.DoesNotExist):
        raise Http404("No such file.") from None
    if attachment.owner_id != user.pk and not (
            user.is_active and user.is_staff and user.has_perm(REVIEW_PERMISSION)):
        raise Http404("No such file.")
    return attachment


def conversation_list(*, user: Any, query: str = "") -> QuerySet[Conversation]:
    """The user's conversations, newest activity first, optionally filtered by title."""
    conversations = Conversation.objects.filter(owner=user).order_by("-updated")
    if query.strip():
        conversations = conversations.filter(title__icontains=query.strip())
    return conversations


def turn_ancestors(*, turn: Turn) -> list[Turn]:
    """The branch from the root down to `turn` (inclusive), root first."""
    ids = _ancestor_ids(turn.pk)[1:]
    by_id = Turn.objects.in_bulk(ids)
    return [by_id[i] for i in reversed(ids) if i in by_id] + [turn]


# A conversation is a tree of turns; a branch is the path from the root to one of its
# leaves. These walk it in the database (a recursive query), so their cost follows the
# part of the branch asked for, not the size of the tree.

def _walk(sql: str, params: list) -> list[uuid.UUID]:
    table = connection.ops.quote_name(Turn._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(t=table), params)
        return [Turn._meta.pk.to_python(row[0]) for row in cursor.fetchall()]


def _db_id(turn_id: uuid.UUID | str):
    return Turn._meta.pk.get_db_prep_value(uuid.UUID(str(turn_id)), connection)


def _ancestor_ids(turn_id: uuid.UUID | str, limit: int | None = None) -> list[uuid.UUID]:
    """`turn_id` and its ancestors, nearest first: at most `limit` of them."""
    return _walk("""
        WITH RECURSIVE up(id, parent_id, depth) AS (
            SELECT id, parent_id, 1 FROM {t} WHERE id = %s
            UNION ALL
            SELECT p.id, p.parent_id, up.depth + 1 FROM {t} p JOIN up ON p.id = up.parent_id
            WHERE up.depth < %s)
        SELECT id FROM up ORDER BY depth""", [_db_id(turn_id), limit or 1 << 30])


def _newest_descendant_ids(turn_id: uuid.UUID | str) -> list[uuid.UUID]:
    """`turn_id`, its newest child, that one's newest child, … down to a leaf."""
    return _walk("""
        WITH RECURSIVE down(id, depth) AS (
            SELECT id, 1 FROM {t} WHERE id = %s
            UNION ALL
            SELECT (SELECT c.id FROM {t} c WHERE c.parent_id = down.id
                    ORDER BY c.created DESC, c.id DESC LIMIT 1), down.depth + 1
            FROM down WHERE down.id IS NOT NULL)
        SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth""", [_db_id(turn_id)])


def branch_leaf(*, conversation: Conversation) -> uuid.UUID | None:
    """The end of the branch on screen: the remembered one, else the newest turn."""
    if conversation.branch_leaf_id:
        return conversation.branch_leaf_id
    return (Turn.objects.filter(conversation=conversation).order_by("-created", "-id")
            .values_list("id", flat=True).first())


def branch_tail(*, conversation: Conversation, limit: int) -> list[dict[str, Any]]:
    """The last `limit` turns of the branch on screen, root side first, with siblings."""
    leaf = branch_leaf(conversation=conversation)
    if leaf is None:
        return []
    return turns_with_siblings(conversation=conversation,
                               ids=_ancestor_ids(leaf, limit)[::-1])


def branch_before(*, turn: Turn, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` turns just above `turn` on its branch, root side first, with siblings."""
    if turn.parent_id is None:
        return []
    return turns_with_siblings(conversation=turn.conversation,
                               ids=_ancestor_ids(turn.parent_id, limit)[::-1])


def branch_from(*, turn: Turn) -> list[dict[str, Any]]:
    """`turn` and the newest turn below it at each level, down to a leaf, with siblings."""
    return turns_with_siblings(conversation=turn.conversation,
                               ids=_newest_descendant_ids(turn.pk))


def turns_with_siblings(*, conversation: Conversation,
                        ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """The turns `ids`, in that order, each with `siblings`: the ids of every turn with
    its parent (itself included), oldest first: what a "‹ 2/3 ›" switcher needs."""
    by_id = Turn.objects.in_bulk(ids)
    turns = [by_id[i] for i in ids if i in by_id]
    parents = {t.parent_id for t in turns}
    family = Q(parent_id__in=[p for p in parents if p is not None])
    if None in parents:
        family |= Q(parent__isnull=True)
    kids: dict[Any, list[str]] = {}
    rows = (Turn.objects.filter(family, conversation=conversation)
            .order_by("created", "id").values_list("parent_id", "id"))
    for parent_id, turn_id in rows:
        kids.setdefault(parent_id, []).append(str(turn_id))
    return [dict(turn_to_dict(t), siblings=kids.get(t.parent_id, [str(t.pk)])) for t in turns]


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
