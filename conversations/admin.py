"""Read-only review of conversations, for superusers and staff with the review permission;
access policies, and each user's effective policy and usage on their admin page."""

import json
import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from conversations import catalogue, policies
from conversations.interactions import output_text
from conversations.models import AccessPolicy, Conversation, Turn
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
