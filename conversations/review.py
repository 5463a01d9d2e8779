"""The read-only conversation page, built once for two doors: a reviewer's (from the admin,
every opening recorded in the review log) and a shared link's (any signed-in teammate).

The page embeds the turns as JSON and the chat page's own renderers draw them
(static/chat/review.js): no websocket, no composer, nothing to change.
"""

import ipaddress
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from chatsite.middleware import POLICY
from conversations import catalogue, selectors, services
from conversations.models import Conversation


def _page(request: HttpRequest, total: int) -> dict[str, int]:
    """The page of turns asked for (`?page=`, 1-based, kept within those there are)."""
    size = max(settings.REVIEW_TURNS_PAGE, 1)
    pages = max(1, -(-total // size))
    try:
        number = min(max(int(request.GET.get("page", "1")), 1), pages)
    except ValueError:
        number = 1
    offset = (number - 1) * size
    return {"number": number, "pages": pages, "offset": offset, "size": size,
            "first": offset + 1, "last": min(offset + size, total), "total": total,
            "previous": number - 1, "next": number + 1 if number < pages else 0}


def _read_only_page(request: HttpRequest, conversation: Conversation, *,
                    back_url: str, reviewing: bool, files: str | None = None) -> HttpResponse:
    """`files`: where the page fetches the conversation's files (+ id + "/"), when not
    from /files/."""
    page = _page(request, conversation.turns.count())
    turns = selectors.turns_page(conversation=conversation, offset=page["offset"],
                                 limit=page["size"])
    leaf = selectors.branch_leaf(conversation=conversation)
    data = {"conversation": selectors.conversation_to_dict(conversation), "turns": turns,
            "leaf": str(leaf) if leaf else None, "files": files}
    context = {
        "conversation": conversation,
        "owner_name": conversation.owner.get_username(),
        "model_label": catalogue.model_info(conversation.model).label,
        "reviewing": reviewing, "back_url": back_url, "page": page, "readonly_data": data,
    }
    response = render(request, "conversations/readonly.html", context)
    # The admin pages are left without our policy (middleware.py); this one shows model
    # output, so it carries the chat page's policy wherever it is served.
    response.headers["Content-Security-Policy"] = POLICY
    return response


def client_address(request: HttpRequest) -> str | None:
    """The visitor's address (daphne puts X-Forwarded-For here with --proxy-headers)."""
    address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record_review(request: HttpRequest, conversation: Conversation) -> None:
    services.review_log_create(reviewer=request.user, conversation=conversation,
                               address=client_address(request),
                               user_agent=request.headers.get("User-Agent", ""))


@never_cache
@require_GET
def review(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Any user's conversation, for reviewers; served under the admin (admin.py wraps it)."""
    if not selectors.can_review(request.user):
        raise PermissionDenied
    conversation = get_object_or_404(Conversation.objects.select_related("owner"),
                                     pk=conversation_id)
    record_review(request, conversation)
    back = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    return _read_only_page(request, conversation, back_url=back, reviewing=True)


@never_cache
@login_required
@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    """A conversation its owner shared: read-only, for anyone signed in; 404 once revoked."""
    conversation = selectors.conversation_shared(token=token)
    # Its files come through the link too: /files/ serves only their owner and reviewers.
    return _read_only_page(request, conversation, back_url=reverse("index"), reviewing=False,
                           files=reverse("shared", args=[token]) + "files/")


def share_state(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    """Whether the conversation is shared, and its link's full address when it is."""
    url = None
    if conversation.share_token:
        url = request.build_absolute_uri(reverse("shared", args=[conversation.share_token]))
    return {"shared": bool(url), "url": url}


def _share_answer(request: HttpRequest, conversation: Conversation, said: str) -> HttpResponse:
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(share_state(request, conversation))
    messages.success(request, said)
    return redirect("chat", conversation.pk)


def _set_sharing(request: HttpRequest, conversation_id: uuid.UUID, change: Any,
                 said: str) -> HttpResponse:
    conversation = selectors.conversation_for_user(user=request.user,
                                                   conversation_id=conversation_id)
    change(conversation=conversation)
    return _share_answer(request, conversation, said)


@login_required
@require_POST
def share(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The owner makes (or keeps) a read-only link to the conversation."""
    return _set_sharing(request, conversation_id, services.conversation_share,
                        "Anyone signed in with the link can now read this chat.")


@login_required
@require_POST
def unshare(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The owner revokes the link: it answers 404 from now on."""
    return _set_sharing(request, conversation_id, services.conversation_unshare,
                        "The link no longer works.")
