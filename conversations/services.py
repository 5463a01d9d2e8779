"""The only place that writes conversations, turns and attachments."""

import logging
import secrets
from contextlib import nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from conversations import options, policies
from conversations.catalogue import TOOL_NAMES, available_models, disabled_tools, model_info
from conversations.interactions import output_text
from conversations.models import (
    RUNNING_STATUSES,
    Attachment,
    Conversation,
    ReviewLog,
    SpentUsage,
    Turn,
)
from conversations.selectors import input_text

if TYPE_CHECKING:
    from conversations.uploads import Upload

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
THINKING_LEVELS = options.THINKING_LEVELS
MAX_OUTPUT_TOKENS = options.MAX_OUTPUT_TOKENS
MAX_SYSTEM_INSTRUCTION = 100_000


def conversation_create(*, owner: Any, model: str, title: str = "") -> Conversation:
    return Conversation.objects.create(owner=owner, model=model, title=title.strip()[:200])


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200]
    conversation.save(update_fields=["title", "updated"])
    return conversation


@transaction.atomic
def conversation_delete(*, conversation: Conversation, now: datetime | None = None) -> None:
    """Delete a conversation, keeping what its turns spent (SpentUsage): the ones with
    usage, still running, or in the message rate's hour (the hour before `now`)."""
    now = now or timezone.now()
    counted = (Q(usage__isnull=False) | Q(status__in=RUNNING_STATUSES)
               | Q(created__gte=now - policies.HOUR))
    # Locked: a reply that ends meanwhile writes its usage after this, into SpentUsage.
    turns = (Turn.objects.select_for_update().filter(counted, conversation=conversation)
             .values_list("pk", "model", "usage", "created"))
    SpentUsage.objects.bulk_create(
        SpentUsage(turn_id=pk, owner_id=conversation.owner_id, model=model, usage=usage,
                   created=created) for pk, model, usage, created in turns)
    conversation.delete()


# Sentinel: leave the response schema as it is (None means "no schema").
UNCHANGED: Any = object()


def conversation_share(*, conversation: Conversation) -> Conversation:
    """Give the conversation a read-only link for signed-in teammates (kept if it has one)."""
    if not conversation.share_token:
        # 32 random bytes: a link cannot be guessed, only passed on.
        conversation.share_token = secrets.token_urlsafe(32)
        Conversation.objects.filter(pk=conversation.pk).update(
            share_token=conversation.share_token)
    return conversation


def conversation_unshare(*, conversation: Conversation) -> Conversation:
    """Revoke the link: the old address answers 404 from now on (a new link is a new token)."""
    conversation.share_token = ""
    Conversation.objects.filter(pk=conversation.pk).update(share_token="")
    return conversation


def review_log_create(*, reviewer: Any, conversation: Conversation, address: str | None,
                      user_agent: str) -> ReviewLog:
    """Record that `reviewer` opened `conversation` (names copied: the log outlives both)."""
    return ReviewLog.objects.create(
        reviewer=reviewer, reviewer_name=reviewer.get_username(),
        conversation_id=conversation.pk, conversation_title=conversation.title[:200],
        owner_name=conversation.owner.get_username(), address=address or None,
        user_agent=user_agent[:300])


def _settings_errors(conversation: Conversation, model: str | None, system_instruction: str | None,
                     generation_settings: dict[str, Any] | None, tools: list[str] | None,
                     response_schema: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    if model is not None and (refused := _model_refused(conversation.owner_id, model)):
        errors["model"] = refused
    if system_instruction is not None and len(system_instruction) > MAX_SYSTEM_INSTRUCTION:
        errors["system_instruction"] = (
            f"The system instruction is over {MAX_SYSTEM_INSTRUCTION:,} characters."
        )
    info = model_info(model or conversation.model)
    if generation_settings is not None:
        errors.update(options.generation_errors(generation_settings, info))
        if "thinking_level" in errors and not info.takes_thinking:
            errors["thinking_level"] = (
                f"{info.why_not('thinking_level')} Leave this on “Model default”, or choose "
                "a Gemini model.")
    if tools is not None:
        error = options.tools_error(tools, info, before=conversation.tools or [],
                                    disabled=disabled_tools())
        if error:
            errors["tools"] = error
    if response_schema is not UNCHANGED:
        error = options.schema_error(response_schema, info,
                                     limit=settings.MAX_RESPONSE_SCHEMA_BYTES)
        if error:
            errors["response_schema"] = error
    return errors


def _model_refused(owner_id: Any, model: str) -> str:
    """Why the owner may not switch to `model`; empty when they may."""
    if model not in {m.id for m in available_models()}:
        return f"Unknown or unavailable model: {model!r}."
    if not policies.effective_policy(owner_id).allows_model(model):
        return f"Your account may not use {model_info(model).label}: choose another model."
    return ""


@transaction.atomic
def conversation_update_settings(
    *,
    conversation: Conversation,
    model: str | None = None,
    system_instruction: str | None = None,
    generation_settings: dict[str, Any] | None = None,
    stateful: bool | None = None,
    tools: list[str] | None = None,
    response_schema: Any = UNCHANGED,
) -> Conversation:
    """Change what the next turns are sent with; `None` (UNCHANGED for the schema, whose
    None removes it) leaves a field as it is. Nothing is saved when anything is refused."""
    errors = _settings_errors(conversation, model, system_instruction, generation_settings,
                              tools, response_schema)
    if errors:
        raise ValidationError(errors)

    if model is not None:
        conversation.model = model
    if system_instruction is not None:
        conversation.system_instruction = system_instruction
    if generation_settings is not None:
        conversation.generation_settings = {
            **conversation.generation_settings,
            **generation_settings,
        }
    if stateful is not None:
        conversation.stateful = stateful
    if tools is not None:
        conversation.tools = [name for name in TOOL_NAMES if name in tools]
    if response_schema is not UNCHANGED:
        conversation.response_schema = response_schema
    conversation.save()
    return conversation


def title_from_text(text: str) -> str:
    """The first line-ish of a message, cut at a word near TITLE_LENGTH characters."""
    text = " ".join(text.split())
    if len(text) <= TITLE_LENGTH:
        return text
    cut = text[:TITLE_LENGTH]
    if " " in cut[TITLE_LENGTH // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:") + "…"


def _check_can_start(conversation: Conversation, parent: Turn | None) -> None:
    """Refuse a turn on a busy branch, or past the user's running-turns limit."""
    running = Turn.objects.filter(status__in=RUNNING_STATUSES,  # one query for both limits
                                  conversation__owner_id=conversation.owner_id).aggregate(
        mine=Count("pk"), here=Count("pk", filter=Q(conversation=conversation, parent=parent)))
    # The upstream refuses to chain onto an interaction that is still running, and a
    # second reply beside a running one would race it for the same branch.
    if (parent is not None and parent.status in RUNNING_STATUSES) or running["here"]:
        raise ValidationError("A reply on this branch is still being written: wait for it "
                              "or stop it first.", code="busy")
    limit = settings.MAX_RUNNING_TURNS_PER_USER
    if running["mine"] >= limit:
        raise ValidationError(
            f"You already have {limit} replies being written (the most this server allows "
            "at once). Wait for one of them to finish, then send again.",
            code="too_many_running")


@transaction.atomic
def turn_create(
    *, conversation: Conversation, client_id: str, input: list[dict], parent: Turn | None
) -> tuple[Turn, bool]:
    """A queued turn; sending the same `client_id` again returns the existing turn."""
    if parent is not None and parent.conversation_id != conversation.id:
        raise ValidationError({"parent": "The parent turn belongs to another conversation."})
    existing = Turn.objects.filter(conversation=conversation, client_id=client_id).first()
    if existing is not None:
        return existing, False
    policies.check_turn(user_id=conversation.owner_id, model=conversation.model,
                        tools=conversation.tools)
    _check_can_start(conversation, parent)
    try:
        with transaction.atomic():  # a savepoint: a resend on another socket may win the race
            turn = Turn.objects.create(
                conversation=conversation, client_id=client_id, parent=parent, input=input,
                status=Turn.Status.QUEUED, model=conversation.model, text=input_text(input),
                previous_interaction_id=parent.interaction_id if parent is not None else "")
    except IntegrityError:
        return Turn.objects.get(conversation=conversation, client_id=client_id), False

    fields = {"updated": timezone.now(), "branch_leaf": turn}  # a new version is shown
    if not conversation.title:
        fields["title"] = title_from_text(input_text(input))
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    for name, value in fields.items():
        setattr(conversation, name, value)
    return turn, True


def conversation_show_branch(*, conversation: Conversation, leaf_id: Any) -> None:
    """Remember the branch on screen (by its last turn), for other tabs and the next visit.

    Not activity: the conversation keeps its place in the list."""
    Conversation.objects.filter(pk=conversation.pk).update(branch_leaf_id=leaf_id)
    conversation.branch_leaf_id = leaf_id


def _known_status(status: str, fallback: Turn.Status) -> str:
    """The upstream status enum is open (e.g. `budget_exceeded`); store only our own values."""
    if status in Turn.Status.values:
        return status
    logger.warning("storing unknown turn status %r as %r", status, fallback.value)
    return fallback.value


def _ids(last_event_id: str, interaction_id: str) -> dict[str, str]:
    """Fields to set only when known, so a checkpoint never blanks them."""
    fields = {}
    if last_event_id:
        fields["last_event_id"] = last_event_id
    if interaction_id:
        fields["interaction_id"] = interaction_id
    return fields


def turn_checkpoint(
    *,
    turn_id: Any,
    steps: list[dict],
    seq: int,
    last_event_id: str = "",
    interaction_id: str = "",
    status: str | None = None,
    previous_interaction_id: str | None = None,
) -> None:
    """Save a running turn's progress in one UPDATE (called at step boundaries, ~1/s).

    Blank ids and None (status, previous_interaction_id) leave the stored value as it is."""
    turns_checkpoint(batch={turn_id: {
        "steps": steps, "seq": seq, "last_event_id": last_event_id,
        "interaction_id": interaction_id, "status": status,
        "previous_interaction_id": previous_interaction_id}})


def turns_checkpoint(*, batch: dict[Any, dict]) -> None:
    """Save several running turns' progress (turn id -> turn_checkpoint's fields) in one
    transaction and one statement run for each turn.

    Prepared once rather than built by the ORM per turn: with a few hundred streams the
    ORM's query building, not the database, kept the database thread busy."""
    if not batch:
        return
    now = timezone.now()
    rows = [_checkpoint_row(turn_id, now=now, **fields) for turn_id, fields in batch.items()]
    # One statement alone is atomic already: a transaction only for several.
    with transaction.atomic() if len(rows) > 1 else nullcontext(), connection.cursor() as cursor:
        cursor.executemany(_checkpoint_sql(), rows)


def _checkpoint_sql() -> str:
    column = {name: connection.ops.quote_name(Turn._meta.get_field(name).column)
              for name in _CHECKPOINTED}
    keep_if_blank = "{0} = COALESCE(NULLIF(%s, ''), {0})"
    keep_if_null = "{0} = COALESCE(%s, {0})"
    assignments = [f"{column['steps']} = %s", f"{column['seq']} = %s",
                   f"{column['updated']} = %s",
                   keep_if_blank.format(column["last_event_id"]),
                   keep_if_blank.format(column["interaction_id"]),
                   keep_if_null.format(column["status"]),
                   keep_if_null.format(column["previous_interaction_id"])]
    return (f"UPDATE {connection.ops.quote_name(Turn._meta.db_table)} "
            f"SET {', '.join(assignments)} WHERE {column['id']} = %s")


_CHECKPOINTED = ("steps", "seq", "updated", "last_event_id", "interaction_id", "status",
                 "previous_interaction_id", "id")


def _checkpoint_row(turn_id: Any, *, now: Any, steps: list[dict], seq: int,
                    last_event_id: str = "", interaction_id: str = "",
                    status: str | None = None,
                    previous_interaction_id: str | None = None) -> list[Any]:
    """turns_checkpoint's parameters for one turn, as its fields prepare them."""
    if status is not None:
        status = _known_status(status, Turn.Status.IN_PROGRESS)
    values = (steps, seq, now, last_event_id, interaction_id, status,
              previous_interaction_id, turn_id)
    fields = [Turn._meta.get_field(name) for name in _CHECKPOINTED]
    return [field.get_db_prep_save(value, connection) if value is not None else None
            for field, value in zip(fields, values, strict=True)]


def turn_finish(
    *,
    turn_id: Any,
    status: str,
    steps: list[dict],
    seq: int,
    usage: dict | None = None,
    error: dict | None = None,
    last_event_id: str = "",
    interaction_id: str = "",
    output_check: dict | None = None,
) -> None:
    """Store a turn's final state in one UPDATE (and its reply's text, for search)."""
    reply = output_text(steps)
    stored = Turn.objects.filter(pk=turn_id).update(
        status=_known_status(status, Turn.Status.INCOMPLETE),
        steps=steps,
        text=Concat(F("text"), Value(f"\n{reply}")) if reply else F("text"),
        seq=seq,
        usage=usage,
        error=error,
        output_check=output_check,
        updated=timezone.now(),
        **_ids(last_event_id, interaction_id),
    )
    if not stored and usage:  # its conversation was deleted while it ran
        SpentUsage.objects.filter(turn_id=turn_id).update(usage=usage)


def attachment_remember_remote(*, attachment_id: Any, name: str, uri: str,
                               expires: Any) -> None:
    """Remember the Files API copy of an attachment: later turns send its `uri`."""
    Attachment.objects.filter(pk=attachment_id).update(
        remote_name=name, remote_uri=uri, remote_expires=expires)


def attachments_forget_remote(*, attachment_ids: list[Any]) -> None:
    """The upstream no longer has these copies: the next request uploads them again."""
    Attachment.objects.filter(pk__in=attachment_ids).update(
        remote_name="", remote_uri="", remote_expires=None)


def turns_interrupt_running() -> int:
    """End every queued or running turn as failed; for a server that starts alone.

    A turn's runner lives in the server process: after a restart nothing runs the turns
    it left behind, and they would wait forever (and block replies chained onto them).
    The partial output stays, and the error is retryable.
    """
    return Turn.objects.filter(status__in=RUNNING_STATUSES).update(
        status=Turn.Status.FAILED,
        error={"code": "interrupted", "retryable": True,
               "message": "The server restarted while this reply was being written."},
        updated=timezone.now(),
    )


def attachment_create(*, owner: Any, upload: "Upload") -> Attachment:
    """Store an upload once per owner and content: the same bytes again give the same
    Attachment (named as this upload), and the new copy is dropped."""
    try:
        return _attachment_store(owner, upload)
    finally:
        upload.file.close()  # the temporary copy: moved into place, or dropped here


def _attachment_store(owner: Any, upload: "Upload") -> Attachment:
    # The name goes to attachment_path (by owner and hash); FileSystemStorage moves a
    # temporary upload into place (a rename): no copy is made.
    attachment, existed = attachment_store_once(
        owner_id=owner.pk, sha256=upload.sha256, content=upload.file, name=upload.name,
        mime_type=upload.mime_type, kind=upload.kind, size=upload.size)
    return _attachment_reuse(attachment, upload) if existed else attachment


def attachment_store_once(*, owner_id: Any, sha256: str, content: Any, name: str,
                          **fields: Any) -> tuple[Attachment, bool]:
    """The owner's one Attachment of these bytes, and whether it was there before: else
    `content` is saved (under attachment_path) as a new one. Two stores of the same bytes
    at once (another request, another turn) keep the winner's row and file."""
    existing = Attachment.objects.filter(owner_id=owner_id, sha256=sha256).first()
    if existing is not None:
        return existing, True
    attachment = Attachment(owner_id=owner_id, sha256=sha256, name=name, **fields)
    attachment.file.save(name, content, save=False)
    try:
        with transaction.atomic():  # a savepoint: the unique constraint decides the race
            attachment.save()
    except IntegrityError:
        attachment.file.delete(save=False)  # ours; the winner's file stays
        return Attachment.objects.get(owner_id=owner_id, sha256=sha256), False
    return attachment, False


def _attachment_reuse(attachment: Attachment, upload: "Upload") -> Attachment:
    fields = []
    if not attachment.file or not attachment.file.storage.exists(attachment.file.name):
        # The stored copy went missing (a media restore): this upload replaces it.
        attachment.file.save(upload.name, upload.file, save=False)
        fields.append("file")
    if attachment.name != upload.name:
        attachment.name = upload.name
        fields.append("name")
    if fields:
        attachment.save(update_fields=fields)
    return attachment
