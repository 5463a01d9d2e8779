"""Read-only review of conversations, for superusers and staff with the review permission."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from conversations.export_views import export_selected_json, export_selected_markdown
from conversations.interactions import output_text
from conversations.models import Conversation, Turn
from conversations.selectors import input_text

REVIEW_PERMISSION = "conversations.review_conversation"


def _pretty_json(value: Any) -> str:
    if value is None:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


class ReviewOnlyMixin:
    """Visible to reviewers; nobody adds or edits through the admin."""

    def _can_review(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and user.is_staff and user.has_perm(REVIEW_PERMISSION)

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
    fields = ["created", "status", "input_text", "reply_text", "usage_json", "error_json"]
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(ReviewOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "owner", "model", "updated"]
    list_select_related = ["owner"]
    search_fields = ["title", "owner__username"]
    list_filter = ["model", "stateful"]
    fields = [
        "id", "owner", "title", "model", "stateful", "system_instruction",
        "generation_settings", "created", "updated",
    ]
    readonly_fields = fields
    inlines = [TurnInline]
    actions = [export_selected_json, export_selected_markdown]


@admin.register(Turn)
class TurnAdmin(ReviewOnlyMixin, TurnDisplayMixin, admin.ModelAdmin):
    list_display = ["created", "conversation", "status", "input_text"]
    list_select_related = ["conversation"]
    list_filter = ["status"]
    search_fields = ["client_id", "interaction_id", "conversation__title"]
    fields = [
        "id", "conversation", "parent", "client_id", "status", "input_text", "reply_text",
        "usage_json", "error_json", "steps_json", "interaction_id", "previous_interaction_id",
        "last_event_id", "seq", "created", "updated",
    ]
    readonly_fields = fields

    @admin.display(description="steps")
    def steps_json(self, turn: Turn) -> str:
        return _pretty_json(turn.steps)
