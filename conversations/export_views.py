"""Export conversations as files (JSON, Markdown) and import an export: for their owners,
and as admin actions for reviewers."""

import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from conversations import exports, imports, selectors
from conversations.models import Conversation, ReviewLog

FORMATS = {"json": ("application/json", "json"), "md": ("text/markdown; charset=utf-8", "md")}


def _download(content: bytes | str, content_type: str, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _format(request: HttpRequest) -> str:
    fmt = request.GET.get("format", "json")
    if fmt not in FORMATS:
        raise Http404("Unknown export format.")
    return fmt


def export_files(conversations: Sequence[Conversation], fmt: str) -> HttpResponse:
    """One conversation: a .json or .md file; several: one .json, or a zip of .md files."""
    content_type, extension = FORMATS[fmt]
    if fmt == "json":
        name = (exports.filename(conversations[0], "json") if len(conversations) == 1
                else exports.export_name("json"))
        return _download(exports.export_json(conversations), content_type, name)
    if len(conversations) == 1:
        return _download(exports.conversation_markdown(conversations[0]), content_type,
                         exports.filename(conversations[0], extension))
    return _download(exports.export_markdown_zip(conversations), "application/zip",
                     exports.export_name("zip"))


@login_required
@require_GET
def conversation_export(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = selectors.conversation_for_user(user=request.user,
                                                   conversation_id=conversation_id)
    return export_files([conversation], _format(request))


def _too_many(count: int) -> str:
    return (f"That is {count} chats; one export holds at most "
            f"{settings.EXPORT_MAX_CONVERSATIONS} (EXPORT_MAX_CONVERSATIONS). Select fewer "
            "and export them in parts.")


@login_required
@require_GET
def conversations_export(request: HttpRequest) -> HttpResponse:
    """The chats `?id=…&id=…` (all of them without any), in one file."""
    fmt = _format(request)
    mine = Conversation.objects.filter(owner=request.user).order_by("-updated")
    ids = request.GET.getlist("id")
    if ids:
        try:
            wanted = {uuid.UUID(i) for i in ids}
        except ValueError:
            raise Http404("No such conversation.") from None
        mine = mine.filter(pk__in=wanted)
        if mine.count() != len(wanted):  # someone else's, or gone: as for one chat, 404
            raise Http404("No such conversation.")
    count = mine.count()
    if count > settings.EXPORT_MAX_CONVERSATIONS:
        return JsonResponse({"error": _too_many(count), "code": "too_many"}, status=400)
    if count == 0:
        raise Http404("There are no chats to export.")
    return export_files(list(mine), fmt)


def _imported_json(result: imports.Imported) -> dict[str, Any]:
    items = [{"id": str(c.id), "title": c.title, "url": reverse("chat", args=[c.id])}
             for c in result.conversations]
    return {"conversations": items, "notes": result.notes, "redirect": items[0]["url"]}


@login_required
@require_POST
def conversations_import(request: HttpRequest) -> HttpResponse:
    """An export file (multipart field `file`) as new chats of the person importing it."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise imports.Refused("Choose an export file (.json) to import.", code="no_file")
        imports.check_size(upload.size)  # before reading it into memory
        result = imports.conversations_import(owner=request.user, data=upload.read())
    except imports.Refused as refused:
        status = 413 if refused.code == "too_large" else 400
        if wants_json:
            return JsonResponse({"error": refused.message, "code": refused.code}, status=status)
        messages.error(request, refused.message)
        return redirect("index")
    for note in result.notes:  # shown on the page the import leads to
        messages.info(request, note)
    if wants_json:
        return JsonResponse(_imported_json(result), status=201)
    return redirect(_imported_json(result)["redirect"])


# --- admin actions (ConversationAdmin.actions) ---------------------------------------------


def _log_reviews(request: HttpRequest, conversations: Sequence[Conversation]) -> None:
    """An export is a review of each chat in it: the review log says who took what."""
    ReviewLog.objects.bulk_create([ReviewLog(
        reviewer=request.user, reviewer_name=request.user.get_username(),
        conversation_id=c.id, conversation_title=c.title, owner_name=c.owner.get_username(),
        address=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("User-Agent", "")[:300]) for c in conversations])


def _admin_export(modeladmin: Any, request: HttpRequest, queryset: Any, fmt: str) -> Any:
    count = queryset.count()
    if count > settings.EXPORT_MAX_CONVERSATIONS:
        modeladmin.message_user(request, _too_many(count), messages.ERROR)
        return None
    conversations = list(queryset.select_related("owner"))
    _log_reviews(request, conversations)
    return export_files(conversations, fmt)


@admin.action(description="Export selected as JSON")
def export_selected_json(modeladmin: Any, request: HttpRequest, queryset: Any) -> Any:
    return _admin_export(modeladmin, request, queryset, "json")


@admin.action(description="Export selected as Markdown")
def export_selected_markdown(modeladmin: Any, request: HttpRequest, queryset: Any) -> Any:
    return _admin_export(modeladmin, request, queryset, "md")
