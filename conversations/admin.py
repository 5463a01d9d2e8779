"""Read-only review of conversations, for superusers and staff with the review permission,
and the review log, which only superusers read and nobody edits."""

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from conversations import review
from conversations.interactions import output_text
from conversations.models import RUNNING_STATUSES, Conversation, ReviewLog, Turn
from conversations.selectors import can_review, input_text


def _pretty_json(value: Any) -> str:
    if value is None:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


class ReviewOnlyMixin:
    """Visible to reviewers; nobody adds or edits through the admin."""

    def _can_review(self, request: HttpRequest) -> bool:
        return can_review(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._can_review(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can_review(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _recorded(admin_view: Any, conversation_of: Any) -> Any:
    """Wrap a change view so that each opening of a conversation writes a review log row."""

    def view(self, request: HttpRequest, object_id: str, *args: Any, **kwargs: Any) -> HttpResponse:
        response = admin_view(self, request, object_id, *args, **kwargs)
        obj = self.get_object(request, unquote(object_id)) if response.status_code == 200 else None
        if obj is not None and request.method == "GET":
            review.record_review(request, conversation_of(obj))
        return response

    return view


class TurnDisplayMixin:
    @admin.display(description="input")
    def input_text(self, turn: Turn) -> str:
        return input_text(turn.input)

    @admin.display(description="reply")
    def reply_text(self, turn: Turn) -> str:
        return output_text(turn.steps)

    @admin.display(description="usage")
    def usage_json(self, turn: Turn) -> str:
        return _pretty_json(turn.usage)

    @admin.display(description="error")
    def error_json(self, turn: Turn) -> str:
        return _pretty_json(turn.error)


class TurnInline(ReviewOnlyMixin, TurnDisplayMixin, admin.StackedInline):
    model = Turn
    extra = 0
    show_change_link = True
    fields = ["created", "status", "model", "input_text", "reply_text", "usage_json", "error_json"]
    readonly_fields = fields


def _per_conversation(value: Any) -> Subquery:
    """`value` (an aggregate) over each conversation's turns: a subquery per listed row,
    so the list costs its page, not a join of every turn (and the count query skips it)."""
    turns = Turn.objects.filter(conversation=OuterRef("pk")).order_by().values("conversation")
    return Subquery(turns.annotate(value=value).values("value")[:1])


def search_turn_text(term: str) -> QuerySet:
    """Ids of conversations with a message or reply containing `term`: a plain scan of
    Turn.text, which the sidebar's full-text search (conversations/search.py) may replace."""
    return Turn.objects.filter(text__icontains=term).values("conversation_id")


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("running", "Running"), ("failed", "Last turn failed"), ("ok", "OK"),
                ("empty", "No turns")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        idle = queryset.filter(running=False)
        return {
            "running": queryset.filter(running=True),
            "failed": idle.filter(last_status=Turn.Status.FAILED),
            "ok": idle.exclude(last_status=Turn.Status.FAILED).exclude(last_status=None),
            "empty": queryset.filter(last_status=None),
        }.get(self.value(), queryset)


@admin.register(Conversation)
class ConversationAdmin(ReviewOnlyMixin, admin.ModelAdmin):
    list_display = ["title_or_id", "owner", "model", "turn_count", "tokens", "updated",
                    "status", "review_link"]
    list_select_related = ["owner"]
    search_fields = ["title", "owner__username"]
    search_help_text = "Titles, owners' user names, and the text of messages and replies."
    list_filter = [("owner", admin.RelatedOnlyFieldListFilter), "model", StatusFilter, "updated"]
    date_hierarchy = "updated"
    fields = [
        "id", "owner", "title", "model", "stateful", "system_instruction",
        "generation_settings", "shared", "created", "updated",
    ]
    readonly_fields = fields
    inlines = [TurnInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        newest = Turn.objects.filter(conversation=OuterRef("pk")).order_by("-created", "-id")
        tokens = Sum(Cast(KeyTextTransform("total_tokens", "usage"), BigIntegerField()))
        return super().get_queryset(request).annotate(
            turn_count=_per_conversation(Count("pk")),
            tokens=_per_conversation(tokens),
            running=Exists(Turn.objects.filter(conversation=OuterRef("pk"),
                                               status__in=RUNNING_STATUSES)),
            last_status=Subquery(newest.values("status")[:1]),
        )

    def get_search_results(self, request: HttpRequest, queryset: QuerySet,
                           search_term: str) -> tuple[QuerySet, bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return found, duplicates
        # Subqueries, not a join on turns: no duplicate rows, and the counts stay right.
        return queryset.filter(Q(pk__in=found.values("pk")) | Q(pk__in=search_turn_text(term))), \
            duplicates

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(review.review)
        return [path("<uuid:conversation_id>/review/", view,
                     name="conversations_conversation_review"), *super().get_urls()]

    change_view = _recorded(admin.ModelAdmin.change_view, lambda conversation: conversation)

    @admin.display(description="title", ordering="title")
    def title_or_id(self, conversation: Conversation) -> str:
        return str(conversation)

    @admin.display(description="turns", ordering="turn_count")
    def turn_count(self, conversation: Conversation) -> int:
        return conversation.turn_count or 0

    @admin.display(description="tokens", ordering="tokens")
    def tokens(self, conversation: Conversation) -> str:
        return f"{conversation.tokens or 0:,}"

    @admin.display(description="status")
    def status(self, conversation: Conversation) -> str:
        if conversation.running:
            return "running"
        if conversation.last_status is None:
            return "no turns"
        return "last turn failed" if conversation.last_status == Turn.Status.FAILED else "ok"

    @admin.display(description="shared")
    def shared(self, conversation: Conversation) -> str:
        return "yes, by link" if conversation.share_token else "no"

    @admin.display(description="review")
    def review_link(self, conversation: Conversation) -> str:
        url = reverse("admin:conversations_conversation_review", args=[conversation.pk])
        return format_html('<a href="{}">Review</a>', url)


@admin.register(Turn)
class TurnAdmin(ReviewOnlyMixin, TurnDisplayMixin, admin.ModelAdmin):
    list_display = ["created", "conversation", "model", "status", "input_text"]
    list_select_related = ["conversation"]
    list_filter = ["status", "model"]
    search_fields = ["client_id", "interaction_id", "conversation__title"]
    fields = [
        "id", "conversation", "parent", "client_id", "status", "model", "input_text",
        "reply_text", "usage_json", "error_json", "steps_json", "interaction_id",
        "previous_interaction_id", "last_event_id", "seq", "created", "updated",
    ]
    readonly_fields = fields

    # A turn's page shows the conversation's messages: opening it is a review too.
    change_view = _recorded(admin.ModelAdmin.change_view, lambda turn: turn.conversation)

    @admin.display(description="steps")
    def steps_json(self, turn: Turn) -> str:
        return _pretty_json(turn.steps)


@admin.register(ReviewLog)
class ReviewLogAdmin(admin.ModelAdmin):
    """Superusers read it; nobody adds, changes or deletes a row through the app."""

    list_display = ["at", "reviewer_name", "owner_name", "conversation_title", "conversation",
                    "address", "user_agent"]
    list_filter = [("reviewer", admin.RelatedOnlyFieldListFilter), "at"]
    date_hierarchy = "at"
    search_fields = ["reviewer_name", "owner_name", "conversation_title", "conversation_id"]
    fields = ["at", "reviewer", "reviewer_name", "conversation_id", "conversation_title",
              "owner_name", "address", "user_agent"]
    readonly_fields = fields

    def _superuser(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict:
        return {}  # not even "delete selected"

    @admin.display(description="conversation")
    def conversation(self, entry: ReviewLog) -> str:
        url = reverse("admin:conversations_conversation_review", args=[entry.conversation_id])
        return format_html('<a href="{}">{}</a>', url, entry.conversation_id)
