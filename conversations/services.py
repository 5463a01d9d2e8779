"""The only place that writes conversations and turns."""

import logging
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from conversations.catalogue import available_models, model_info
from conversations.interactions import output_text
from conversations.models import (
    GENERATION_SETTINGS,
    RUNNING_STATUSES,
    Conversation,
    ReviewLog,
    Turn,
)
from conversations.selectors import input_text

logger = logging.getLogger(__name__)

TITLE_LENGTH = 60
THINKING_LEVELS = ("", "minimal", "low", "medium", "high", "xhigh")
MAX_OUTPUT_TOKENS = 65536
MAX_SYSTEM_INSTRUCTION = 100_000


def conversation_create(*, owner: Any, model: str, title: str = "") -> Conversation:
    return Conversation.objects.create(owner=owner, model=model, title=title.strip()[:200])


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:200]
    conversation.save(update_fields=["title", "updated"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


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


def _is_number(value: Any, kind: type | tuple[type, ...] = (int, float)) -> bool:
    """bool is an int subclass; JSON `true` is not a number here."""
    return isinstance(value, kind) and not isinstance(value, bool)


def _validate_generation_settings(values: dict[str, Any]) -> dict[str, str]:
    """Error messages by field; empty when valid."""
    errors: dict[str, str] = {}
    unknown = set(values) - set(GENERATION_SETTINGS)
    if unknown:
        errors["generation_settings"] = f"Unknown settings: {', '.join(sorted(unknown))}."
    temperature = values.get("temperature")
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature <= 2):
        errors["temperature"] = "Temperature must be a number between 0 and 2."
    if values.get("thinking_level") not in (None, *THINKING_LEVELS):
        errors["thinking_level"] = (
            f"Thinking level must be one of: {', '.join(THINKING_LEVELS[1:])} (or empty)."
        )
    tokens = values.get("max_output_tokens")
    if tokens is not None and not (_is_number(tokens, int) and 1 <= tokens <= MAX_OUTPUT_TOKENS):
        errors["max_output_tokens"] = (
            f"Max output tokens must be a whole number between 1 and {MAX_OUTPUT_TOKENS}."
        )
    return errors


@transaction.atomic
def conversation_update_settings(
    *,
    conversation: Conversation,
    model: str | None = None,
    system_instruction: str | None = None,
    generation_settings: dict[str, Any] | None = None,
    stateful: bool | None = None,
) -> Conversation:
    """Change what the next turns are sent with; `None` leaves a field as it is."""
    errors: dict[str, str] = {}
    if model is not None and model not in {m.id for m in available_models()}:
        errors["model"] = f"Unknown or unavailable model: {model!r}."
    if system_instruction is not None and len(system_instruction) > MAX_SYSTEM_INSTRUCTION:
        errors["system_instruction"] = (
            f"The system instruction is over {MAX_SYSTEM_INSTRUCTION:,} characters."
        )
    if generation_settings is not None:
        errors.update(_validate_generation_settings(generation_settings))
        takes_thinking = model_info(model or conversation.model).takes_thinking
        if generation_settings.get("thinking_level") and not takes_thinking:
            errors["thinking_level"] = (
                "The offline model does not think before it answers: leave this on "
                "“Model default”, or choose a Gemini model.")
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
    """Save a running turn's progress in one UPDATE (called at step boundaries, ~1/s)."""
    fields: dict[str, Any] = {
        "steps": steps,
        "seq": seq,
        "updated": timezone.now(),
        **_ids(last_event_id, interaction_id),
    }
    if status is not None:
        fields["status"] = _known_status(status, Turn.Status.IN_PROGRESS)
    if previous_interaction_id is not None:
        fields["previous_interaction_id"] = previous_interaction_id
    Turn.objects.filter(pk=turn_id).update(**fields)


def turns_checkpoint(*, batch: dict[Any, dict]) -> None:
    """Save several running turns' progress (turn id -> turn_checkpoint's fields) in one
    transaction."""
    with transaction.atomic():
        for turn_id, fields in batch.items():
            turn_checkpoint(turn_id=turn_id, **fields)


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
) -> None:
    """Store a turn's final state in one UPDATE (and its reply's text, for search)."""
    reply = output_text(steps)
    Turn.objects.filter(pk=turn_id).update(
        status=_known_status(status, Turn.Status.INCOMPLETE),
        steps=steps,
        text=Concat(F("text"), Value(f"\n{reply}")) if reply else F("text"),
        seq=seq,
        usage=usage,
        error=error,
        updated=timezone.now(),
        **_ids(last_event_id, interaction_id),
    )



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
