"""Pages of the chat UI. Reads go through selectors, writes through services.

Every write view answers JSON when the request asks for it (`Accept: application/json`,
as the page's fetch() calls do) and redirects otherwise (plain form posts).
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from conversations import catalogue, protocol, search, selectors, services
from conversations.forms import RenameForm, SettingsForm
from conversations.models import Conversation

logger = logging.getLogger(__name__)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _get_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> Conversation:
    return selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)


def _chat_url(conversation: Conversation) -> str:
    return reverse("chat", args=[conversation.id])


def _client_config(conversation: Conversation | None) -> dict[str, Any]:
    """What chat.js needs to start: never secrets (the API key stays on the server)."""
    if conversation is None:  # a new chat starts with the default model
        return {"conversation": None, "ws_url": None, "settings_url": None,
                "takes_files": not catalogue.model_info(catalogue.default_model()).local}
    return {
        "conversation": selectors.conversation_to_dict(conversation),
        "url": _chat_url(conversation),
        "ws_url": f"/ws/conversations/{conversation.id}/",
        "settings_url": reverse("conversation_settings", args=[conversation.id]),
    }


def _render_chat(
    request: HttpRequest,
    conversation: Conversation | None,
    *,
    settings_form: SettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    q = request.GET.get("q", "")
    if conversation is not None and settings_form is None:
        settings_form = SettingsForm(conversation=conversation, user=request.user)
    context = {
        "conversation": conversation,
        **_sidebar(request.user, q),
        "settings_form": settings_form,
        "chat_config": _client_config(conversation),
        "model_label": catalogue.model_info(
            conversation.model if conversation else catalogue.default_model(request.user)).label,
    }
    return render(request, "conversations/chat.html", context, status=status)


GROUPS = ((0, "Today"), (1, "Yesterday"), (7, "Previous 7 days"), (30, "Previous 30 days"))


def _grouped(conversations: Iterable[Conversation]) -> list[dict[str, Any]]:
    """Sidebar sections by age of last activity, newest first (like the big chat apps)."""
    today = timezone.localdate()
    groups: list[dict[str, Any]] = []
    for conversation in conversations:
        age = (today - timezone.localdate(conversation.updated)).days
        label = next((name for days, name in GROUPS if age <= days), "Older")
        if not groups or groups[-1]["label"] != label:
            groups.append({"label": label, "conversations": []})
        groups[-1]["conversations"].append(conversation)
    return groups


def _sidebar(user: Any, q: str) -> dict[str, Any]:
    """The sidebar list: by age of last activity, or a search's results, best first."""
    if not q.strip():
        return {"conversation_groups": _grouped(selectors.conversation_list(user=user)), "q": q}
    results = search.search(q, owner=user)
    groups = [{"label": "Results", "conversations": results.conversations}]
    return {"conversation_groups": groups if results.conversations else [], "q": q,
            "more_results": results.more}


def _announce(conversation: Conversation) -> None:
    """Tell the conversation's open sockets (other tabs too) its title or settings changed."""
    try:
        async_to_sync(get_channel_layer().group_send)(
            protocol.group_name(conversation.id),
            protocol.envelope(protocol.conversation_updated(conversation)))
    except Exception:  # the change is saved; open tabs see it on their next snapshot
        logger.warning("could not announce conversation %s", conversation.id, exc_info=True)


def _form_errors(form: Any) -> dict[str, list[str]]:
    return {field: [str(m) for m in errs] for field, errs in form.errors.items()}


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The newest conversation, or an empty new-chat page when there is none."""
    newest = selectors.conversation_list(user=request.user).first()
    if newest is None:
        return _render_chat(request, None)
    url = _chat_url(newest)
    if request.GET.get("q"):
        url += "?" + request.GET.urlencode()
    return redirect(url)


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    conversation = services.conversation_create(owner=request.user,
                                                model=catalogue.default_model(request.user))
    if _wants_json(request):
        return JsonResponse(_client_config(conversation), status=201)
    return redirect(_chat_url(conversation))


@login_required
@require_GET
def chat(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    return _render_chat(request, _get_conversation(request, conversation_id))


@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = _get_conversation(request, conversation_id)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
        _announce(conversation)
    if _wants_json(request):
        if form.errors:
            return JsonResponse({"errors": _form_errors(form)}, status=400)
        return JsonResponse({"conversation": selectors.conversation_to_dict(conversation)})
    if form.errors:
        messages.error(request, "A title needs 1 to 200 characters.")
    return redirect(_chat_url(conversation))


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = _get_conversation(request, conversation_id)
    services.conversation_delete(conversation=conversation)
    if _wants_json(request):
        return JsonResponse({"deleted": str(conversation_id), "redirect": reverse("index")})
    return redirect("index")


@login_required
@require_POST
def conversation_settings(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = _get_conversation(request, conversation_id)
    form = SettingsForm(request.POST, conversation=conversation, user=request.user)
    if form.is_valid():
        try:
            services.conversation_update_settings(
                conversation=conversation, **form.service_kwargs()
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            _announce(conversation)
    if _wants_json(request):
        if form.errors:
            return JsonResponse({"errors": _form_errors(form)}, status=400)
        return JsonResponse({"conversation": selectors.conversation_to_dict(conversation)})
    if form.errors:
        return _render_chat(request, conversation, settings_form=form, status=400)
    messages.success(request, "Settings saved.")
    return redirect(_chat_url(conversation))


@login_required
@require_GET
def conversation_search(request: HttpRequest) -> HttpResponse:
    """The sidebar list searched by title and by what was said: an HTML fragment, or JSON."""
    sidebar = _sidebar(request.user, request.GET.get("q", ""))
    if _wants_json(request):
        items = [
            {
                "id": str(c.id),
                "title": c.title,
                "url": _chat_url(c),
                "updated": c.updated.isoformat(),
                "snippet": getattr(c, "snippet", ""),  # HTML: escaped text, <mark>ed matches
            }
            for group in sidebar["conversation_groups"] for c in group["conversations"]
        ]
        return JsonResponse({"q": sidebar["q"], "conversations": items,
                             "more": sidebar.get("more_results", False)})
    return render(request, "conversations/_conversation_list.html", sidebar)


def signup(request: HttpRequest) -> HttpResponse:
    """Self-service accounts, only when ALLOW_SIGNUP is on (404 otherwise)."""
    if not settings.ALLOW_SIGNUP:
        raise Http404("Sign-up is disabled.")
    if request.user.is_authenticated:
        return redirect("index")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("index")
    return render(request, "registration/signup.html", {"form": form})


def site(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: site-wide switches the templates need."""
    return {"allow_signup": settings.ALLOW_SIGNUP,
            "password_reset": settings.PASSWORD_RESET_ENABLED,
            "sso": settings.OIDC_PROVIDER_NAME if settings.OIDC_ENABLED else "",
            "allowed_domains": settings.OIDC_ALLOWED_DOMAINS,
            "lockout_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)}
