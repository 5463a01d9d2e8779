"""Read-only review of conversations, for superusers and staff with the review permission;
the review log, which only superusers read and nobody edits; access policies, and each
user's effective policy and usage on their admin page."""

import json
import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
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

from conversations import catalogue, policies, review, search
from conversations.export_views import export_selected_json, export_selected_markdown
from conversations.interactions import output_text
from conversations.models import (
    RUNNING_STATUSES,
    AccessPolicy,
    Conversation,
    ReviewLog,
    Turn,
)
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
    actions = [export_selected_json, export_selected_markdown]

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
        # Subqueries, not a join on turns: no duplicate rows, and the counts stay right. The
        # text of messages and replies is searched as the sidebar does (full-text).
        said = search.conversation_ids(term)
        return queryset.filter(Q(pk__in=found.values("pk")) | Q(pk__in=said)), duplicates

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


# -- access policies: who may use what, and how much ------------------------------------

class NamesField(forms.CharField):
    """A list of names typed comma-separated (tool names have no catalogue to pick from yet)."""

    def prepare_value(self, value: Any) -> str:
        return ", ".join(value) if isinstance(value, list) else (value or "")

    def to_python(self, value: Any) -> list[str]:
        names = [n.strip() for n in (super().to_python(value) or "").split(",") if n.strip()]
        bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*", n)]
        if bad:
            raise ValidationError(f"Not a tool name: {', '.join(bad)} (names look like "
                                  "google_search: lowercase letters, digits and _).")
        return list(dict.fromkeys(names))


class AccessPolicyForm(forms.ModelForm):
    allowed_models = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every model. Gemini models need GEMINI_API_KEY.")
    allowed_tools = NamesField(
        required=False, help_text="Comma-separated, e.g. google_search, url_context, "
        "code_execution. Empty: every tool.")

    class Meta:
        model = AccessPolicy
        fields = ["name", "users", "groups", "daily_tokens", "messages_per_hour",
                  "allowed_models", "allowed_tools"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        known = [(m.id, m.label) for m in (catalogue.local_model(), *catalogue.GEMINI_MODELS)]
        ids = {i for i, _ in known}
        # Ids saved before (a model since retired) stay listed, so saving keeps them.
        kept = [(i, f"{i} (not offered now)") for i in self.initial.get("allowed_models") or ()
                if i not in ids]
        self.fields["allowed_models"].choices = known + kept


def _limit(value: int | None, unit: str = "") -> str:
    return "no limit" if value is None else f"{value:,} {unit}".rstrip()


def _names(value: Any, every: str) -> str:
    return ", ".join(value) if value else every


@admin.register(AccessPolicy)
class AccessPolicyAdmin(admin.ModelAdmin):
    form = AccessPolicyForm
    list_display = ["name", "tokens_a_day", "messages_an_hour", "models", "tools", "members"]
    search_fields = ["name", "users__username", "groups__name"]
    filter_horizontal = ["users", "groups"]
    fieldsets = [
        (None, {"fields": ["name", "users", "groups"], "description":
                "A user's own policies apply if there are any, else those of the user's "
                "groups; of several, the most generous wins. Users no policy names get the "
                "site defaults (DEFAULT_DAILY_TOKENS, DEFAULT_MESSAGES_PER_HOUR)."}),
        ("Limits", {"fields": ["daily_tokens", "messages_per_hour"], "description":
                    "Tokens count from local midnight (TIME_ZONE), messages over the last "
                    "60 minutes. Empty: no limit; 0 allows nothing."}),
        ("What may be used", {"fields": ["allowed_models", "allowed_tools"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(
            user_count=Count("users", distinct=True), group_count=Count("groups", distinct=True))

    @admin.display(description="tokens a day", ordering="daily_tokens")
    def tokens_a_day(self, policy: AccessPolicy) -> str:
        return _limit(policy.daily_tokens)

    @admin.display(description="messages an hour", ordering="messages_per_hour")
    def messages_an_hour(self, policy: AccessPolicy) -> str:
        return _limit(policy.messages_per_hour)

    @admin.display(description="models")
    def models(self, policy: AccessPolicy) -> str:
        return _names(policy.allowed_models, "all")

    @admin.display(description="tools")
    def tools(self, policy: AccessPolicy) -> str:
        return _names(policy.allowed_tools, "all")

    @admin.display(description="applies to")
    def members(self, policy: AccessPolicy) -> str:
        return f"{policy.user_count} users, {policy.group_count} groups"


class UserWithAccessAdmin(UserAdmin):
    """Django's user admin, plus what the user may use and has used today."""

    readonly_fields = [*UserAdmin.readonly_fields, "access_policy", "usage_today"]
    fieldsets = [*UserAdmin.fieldsets, ("Access", {"fields": ["access_policy", "usage_today"]})]

    @admin.display(description="effective access policy")
    def access_policy(self, user: Any) -> str:
        policy = policies.effective_policy(user.pk)
        source = ", ".join(policy.names) if policy.names else "site defaults (no policy)"
        return (f"{source}: {_limit(policy.daily_tokens, 'tokens a day')}, "
                f"{_limit(policy.messages_per_hour, 'messages an hour')}; models: "
                f"{_names(sorted(policy.models or ()), 'all')}; tools: "
                f"{_names(sorted(policy.tools or ()), 'all')}")

    @admin.display(description="usage")
    def usage_today(self, user: Any) -> str:
        usage = policies.usage_of(user.pk)
        return (f"{usage.tokens_today:,} tokens today (since midnight, {settings.TIME_ZONE}), "
                f"{usage.messages_last_hour:,} messages in the last hour")


admin.site.unregister(User)
admin.site.register(User, UserWithAccessAdmin)


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
