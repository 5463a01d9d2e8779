"""Who may use what, and how much: a user's effective access policy (AccessPolicy's
docstring has the rules), what they have used, and the refusals a new turn can meet.

Each refusal is a ValidationError whose code the websocket sends as its `error` frame's
code (docs/websocket.md lists them), with a message saying what happened and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import BigIntegerField, Count, Q, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from conversations import catalogue
from conversations.models import AccessPolicy, SpentUsage, Turn

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Policy:
    """What one user may do. None: no limit (numbers), every one (models, tools)."""

    daily_tokens: int | None
    messages_per_hour: int | None
    models: frozenset[str] | None
    tools: frozenset[str] | None
    names: tuple[str, ...] = ()  # the AccessPolicies it comes from; empty: site defaults

    def allows_model(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models

    def refused_tools(self, tools: Iterable[str]) -> list[str]:
        return [] if self.tools is None else [t for t in tools if t not in self.tools]

    @property
    def counts_usage(self) -> bool:
        return self.daily_tokens is not None or self.messages_per_hour is not None


@dataclass(frozen=True)
class Usage:
    tokens_today: int
    messages_last_hour: int


# -- the effective policy ---------------------------------------------------------------

def site_default() -> Policy:
    """The settings' limits (0: none), every model and tool: for users no policy names."""
    return Policy(daily_tokens=settings.DEFAULT_DAILY_TOKENS or None,
                  messages_per_hour=settings.DEFAULT_MESSAGES_PER_HOUR or None,
                  models=None, tools=None)


def effective_policy(user_id: Any) -> Policy:
    """The user's own policies if any, else their groups', merged.

    Two plain joins (the second only for a user with no policy of their own) cost a third
    of one query with EXISTS subqueries: this runs for every message sent."""
    applying = list(AccessPolicy.objects.filter(users=user_id).order_by("name"))
    if not applying:
        applying = list(AccessPolicy.objects.filter(groups__user=user_id).distinct()
                        .order_by("name"))
    return most_generous(applying) if applying else site_default()


def policy_for(user: Any) -> Policy:
    """effective_policy, kept on the user object: a request's user lives for one request,
    so a page asks the database once however often it asks (a socket's user is not used:
    it lives as long as the socket, and a policy may change meanwhile)."""
    cached = getattr(user, "_access_policy", None)
    if cached is None:
        cached = effective_policy(user.pk)
        user._access_policy = cached
    return cached


def most_generous(policies: list[AccessPolicy]) -> Policy:
    """No limit beats any limit, then the largest number; lists are joined, and an empty
    list (every model / tool) beats any list."""
    return Policy(daily_tokens=_largest(p.daily_tokens for p in policies),
                  messages_per_hour=_largest(p.messages_per_hour for p in policies),
                  models=_union(p.allowed_models for p in policies),
                  tools=_union(p.allowed_tools for p in policies),
                  names=tuple(p.name for p in policies))


def _largest(limits: Iterable[int | None]) -> int | None:
    limits = list(limits)
    return None if None in limits else max(limits)


def _union(lists: Iterable[Any]) -> frozenset[str] | None:
    names = [_names(value) for value in lists]
    return None if any(not n for n in names) else frozenset().union(*names)


def _names(value: Any) -> frozenset[str]:
    """A JSON list of names (the admin saves only those; a stray string counts as one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return frozenset()
    return frozenset(v for v in value if isinstance(v, str) and v)


def allowed_models(user: Any, models: Iterable[catalogue.Model]) -> list[catalogue.Model]:
    """The ones of `models` the user may use, in order (the model picker's choices)."""
    policy = policy_for(user)
    return [m for m in models if policy.allows_model(m.id)]


def allowed_tools(user: Any, tools: Iterable[str]) -> list[str]:
    """The ones of `tools` (names) the user may switch on, in order: the settings dialog
    shows only these (turn_create refuses the others)."""
    policy = policy_for(user)
    return [t for t in tools if not policy.refused_tools([t])]


# -- usage ------------------------------------------------------------------------------

# usage.total_tokens as a number. The upstream may spell an int64 as a JSON string; any
# other value (a float, garbage) is left out rather than let PostgreSQL's cast fail and
# refuse every message the user sends today.
_TOKENS = Cast(KT("usage__total_tokens"), BigIntegerField())
_COUNTABLE = Q(usage__total_tokens__regex=r"^[0-9]{1,18}$")


def day_start(now: datetime) -> datetime:
    """Local midnight (TIME_ZONE) of the day `now` falls in."""
    zone = timezone.get_default_timezone()
    return datetime.combine(timezone.localtime(now, zone).date(), time.min, tzinfo=zone)


def next_day_start(now: datetime) -> datetime:
    zone = timezone.get_default_timezone()
    tomorrow = timezone.localtime(now, zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time.min, tzinfo=zone)


def _seconds(start: datetime, end: datetime) -> float:
    # Both in UTC: subtracting two times of one zone ignores a DST change between them.
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()


def _recent_turns(user_id: Any, since: datetime):
    # A conversation's `updated` is set with each new turn and never goes back, so only
    # conversations updated since then can hold turns created since then: this lets the
    # (owner, updated) index pick them instead of visiting every conversation of the user.
    return Turn.objects.filter(conversation__owner_id=user_id,
                               conversation__updated__gte=since, created__gte=since)


def _recent_spent(user_id: Any, since: datetime):
    """What the user's deleted turns since then had spent: it stays counted."""
    return SpentUsage.objects.filter(owner_id=user_id, created__gte=since)


def usage_of(user_id: Any, *, now: datetime | None = None) -> Usage:
    """Tokens of the user's turns since local midnight and turns sent in the last hour,
    deleted ones included: one aggregate query each for turns and for deleted turns."""
    now = now or timezone.now()
    midnight, hour_ago = day_start(now), now - HOUR
    counts = {"tokens": Sum(_TOKENS, filter=Q(created__gte=midnight) & _COUNTABLE),
              "messages": Count("pk", filter=Q(created__gte=hour_ago))}
    since = min(midnight, hour_ago)
    live = _recent_turns(user_id, since).aggregate(**counts)
    gone = _recent_spent(user_id, since).aggregate(**counts)
    return Usage(tokens_today=(live["tokens"] or 0) + (gone["tokens"] or 0),
                 messages_last_hour=live["messages"] + gone["messages"])


# -- refusals ---------------------------------------------------------------------------

def check_turn(*, user_id: Any, model: str, tools: Any, now: datetime | None = None) -> None:
    """Refuse a new turn the user's policy does not allow (ValidationError, coded)."""
    policy = effective_policy(user_id)
    _check_model(policy, model)
    _check_tools(policy, tools if isinstance(tools, list) else [])
    if policy.counts_usage:
        now = now or timezone.now()
        usage = usage_of(user_id, now=now)
        _check_tokens(policy, usage, now)
        _check_messages(policy, usage, user_id, now)


def _check_model(policy: Policy, model: str) -> None:
    if policy.allows_model(model):
        return
    allowed = [m.label for m in catalogue.available_models() if policy.allows_model(m.id)]
    choose = (f"Choose one you may use in the conversation settings: {', '.join(allowed)}."
              if allowed else "Ask an administrator for access to a model.")
    raise ValidationError(f"Your account may not use {catalogue.model_info(model).label}. "
                          f"{choose}", code="model_not_allowed")


def _check_tools(policy: Policy, tools: list) -> None:
    refused = policy.refused_tools(t for t in tools if isinstance(t, str))
    if refused:
        raise ValidationError(
            f"Your account may not use {_tool_list(refused)}. Switch "
            f"{'it' if len(refused) == 1 else 'them'} off in the conversation settings, "
            "then send again.", code="tools_not_allowed")


def _tool_list(names: list[str]) -> str:
    shown = [n.replace("_", " ") for n in names]
    if len(shown) == 1:
        return f"the tool “{shown[0]}”"
    return "the tools " + ", ".join(f"“{n}”" for n in shown)


def _check_tokens(policy: Policy, usage: Usage, now: datetime) -> None:
    limit = policy.daily_tokens
    if limit is None or usage.tokens_today < limit:
        return
    wait = _seconds(now, next_day_start(now))
    if limit == 0:
        message = ("Your account has no tokens to spend (its daily quota is 0). Ask an "
                   "administrator for a quota.")
    else:
        message = (f"You have used your {limit:,} tokens for today; the quota resets at "
                   f"midnight (in {duration(wait)}).")
    raise ValidationError(message, code="quota_exceeded",
                          params={"retry_after": max(1, math.ceil(wait))})


def _check_messages(policy: Policy, usage: Usage, user_id: Any, now: datetime) -> None:
    limit = policy.messages_per_hour
    if limit is None or usage.messages_last_hour < limit:
        return
    if limit == 0:
        raise ValidationError("Your account may not send messages (its limit is 0 an "
                              "hour). Ask an administrator to raise it.",
                              code="rate_limited_messages")
    wait = _until_a_message_is_free(user_id, usage.messages_last_hour - limit, now)
    raise ValidationError(
        f"You have sent {usage.messages_last_hour:,} messages in the last hour, and your "
        f"account may send {limit:,} an hour: try again in {duration(wait)}.",
        code="rate_limited_messages",
        params={"retry_after": max(1, math.ceil(wait))})


def _until_a_message_is_free(user_id: Any, over: int, now: datetime) -> float:
    """Seconds until the hour's count drops below the limit: until the turn that, once an
    hour old, leaves `limit - 1` in the window is that old (asked only on a refusal)."""
    since = now - HOUR
    sent = _recent_turns(user_id, since).order_by().values_list("created", flat=True).union(
        _recent_spent(user_id, since).values_list("created", flat=True), all=True)
    created = list(sent.order_by("created")[over:over + 1])
    return _seconds(now, created[0] + HOUR) if created else 1.0


def duration(seconds: float) -> str:
    """4 min, 5 h 12 min, 40 s: rounded up, as a wait is."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
