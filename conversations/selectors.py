"""Reads used in more than one place (views, consumers, runner, admin)."""

import uuid
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404
from django.urls import reverse

from conversations.catalogue import model_info, tool_label, usable_tools
from conversations.models import Attachment, Conversation, Turn

# Staff with this permission may read any user's conversations (the admin's review pages).
REVIEW_PERMISSION = "conversations.review_conversation"


def can_review(user: Any) -> bool:
    """Staff who may read any user's conversations (and their files)."""
    return user.is_active and user.is_staff and user.has_perm(REVIEW_PERMISSION)


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


def conversation_shared(*, token: str) -> Conversation:
    """The conversation shared under `token`, or Http404 (a wrong or revoked link)."""
    if not token:  # an unshared conversation's token is empty: it must never match
        raise Http404("No such conversation.")
    try:
        return Conversation.objects.select_related("owner").get(share_token=token)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


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


def turns_page(*, conversation: Conversation, offset: int, limit: int) -> list[dict[str, Any]]:
    """Turns of every branch, oldest first, `limit` of them from `offset`, with siblings."""
    ids = (Turn.objects.filter(conversation=conversation).order_by("created", "id")
           .values_list("id", flat=True)[offset:offset + limit])
    return turns_with_siblings(conversation=conversation, ids=list(ids))


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


def attachments_by_id(*, owner_id: Any, ids: list[str]) -> dict[str, Attachment]:
    """The owner's attachments among `ids`, by id (another user's or a malformed id is
    simply absent)."""
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    rows = Attachment.objects.filter(owner_id=owner_id, pk__in=valid)
    return {str(a.pk): a for a in rows}


def conversation_to_dict(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "model": conversation.model,
        "model_label": model_info(conversation.model).label,
        "takes_files": not model_info(conversation.model).local,  # the offline model cannot
        "stateful": conversation.stateful,
        "system_instruction": conversation.system_instruction,
        "generation_settings": conversation.generation_settings,
        "tools": conversation.tools,
        "response_schema": conversation.response_schema,
        # The next reply is structured output (the schema is sent with it).
        "structured": conversation.response_schema is not None
                      and model_info(conversation.model).takes("response_schema"),
        "active_settings": active_settings(conversation),
    }


def active_settings(conversation: Conversation) -> list[str]:
    """What the next turn is sent with beyond the plain model, in words: the line above the
    composer. Only what the conversation's model takes (what a request will carry)."""
    model = model_info(conversation.model)
    generation = conversation.generation_settings or {}
    active = ["System instruction"] if conversation.system_instruction else []
    active += [tool_label(name) for name in usable_tools(model, conversation.tools)]
    if conversation.response_schema is not None and model.takes("response_schema"):
        active.append("JSON schema")
    if model.takes("thinking_level"):
        if generation.get("thinking_level"):
            active.append(f"Thinking: {generation['thinking_level']}")
        summaries = {"auto": "Thought summaries", "none": "No thought summaries"}
        if generation.get("thinking_summaries") in summaries:
            active.append(summaries[generation["thinking_summaries"]])
    if model.makes_images:
        active += [generation[key] for key in ("aspect_ratio", "image_size")
                   if generation.get(key)]
        if generation.get("image_output") == "image":
            active.append("Image only")
    return active


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
        "output_check": turn.output_check,
        "seq": turn.seq,
        "interaction_id": turn.interaction_id,
        "created": turn.created.isoformat(),
    }


def input_text(blocks: list[dict]) -> str:
    """The text blocks of a turn's input, joined."""
    return "\n".join(
        b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"
    )


def attachment_for_viewer(*, user: Any, attachment_id: uuid.UUID | str) -> Attachment:
    """A file its owner, or a reviewer, may see; Http404 for anyone else."""
    if not user.is_authenticated:
        raise Http404("No such file.")
    try:
        attachment = Attachment.objects.get(pk=uuid.UUID(str(attachment_id)))
    except (ValueError, Attachment.DoesNotExist):
        raise Http404("No such file.") from None
    if attachment.owner_id != user.pk and not can_review(user):
        raise Http404("No such file.")
    return attachment


def shared_attachment(*, conversation: Conversation, attachment_id: uuid.UUID | str
                      ) -> Attachment:
    """A file a turn of the shared `conversation` refers to (from its input or its steps),
    or Http404: a link shows its own conversation's files, none other of the owner's."""
    try:
        attachment = Attachment.objects.get(pk=uuid.UUID(str(attachment_id)),
                                            owner_id=conversation.owner_id)
    except (ValueError, Attachment.DoesNotExist):
        raise Http404("No such file.") from None
    wanted = str(attachment.pk)
    # The JSON's text finds the turns that may refer to it; only a block's reference counts.
    mentions = (Turn.objects.filter(conversation=conversation)
                .filter(Q(input__icontains=wanted) | Q(steps__icontains=wanted))
                .values_list("input", "steps"))
    if not any(wanted in attachment_ids(value) for turn in mentions for value in turn):
        raise Http404("No such file.")
    return attachment


def attachment_ids(value: Any) -> set[str]:
    """The ids of the stored files the content blocks in `value` refer to, at any depth."""
    if isinstance(value, dict):
        if isinstance(value.get("attachment"), dict):
            return {str(value["attachment"].get("id"))}
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*(attachment_ids(item) for item in value))
    return set()


def own_attachments(*, user_id: Any, ids: list[str]) -> list[Attachment]:
    """The user's own attachments `ids`, in that order; Attachment.DoesNotExist when any of
    them is not (a malformed id, another user's file, or none at all)."""
    try:
        wanted = [uuid.UUID(i) for i in ids]
    except (TypeError, ValueError, AttributeError):
        raise Attachment.DoesNotExist from None
    found = Attachment.objects.in_bulk(wanted)
    if any(i not in found or found[i].owner_id != user_id for i in wanted):
        raise Attachment.DoesNotExist
    return [found[i] for i in wanted]


def attachment_url(attachment: Attachment) -> str:
    return reverse("file", args=[attachment.pk])


def attachment_block(attachment: Attachment) -> dict[str, Any]:
    """The content block that refers to a stored file (payloads swap `attachment` for
    `data` or `uri` when a request is sent)."""
    return {"type": attachment.kind, "mime_type": attachment.mime_type, "attachment": {
        "id": str(attachment.pk), "url": attachment_url(attachment),
        "name": attachment.name, "size": attachment.size}}
