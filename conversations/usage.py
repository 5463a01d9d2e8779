"""Tokens per user, per model and per day, from the turns' stored usage (Interactions API
usage objects), deleted turns' included: the admin's usage page, its chart and its CSV.

Summed in the database; a day is a day of Turn.created in the site's TIME_ZONE.
"""

import csv
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import BigIntegerField, Count, F, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from conversations.models import SpentUsage, Turn
from conversations.selectors import can_review

# Our column -> the usage object's field (protocol reference, section 4.2).
TOKENS = {"input": "total_input_tokens", "output": "total_output_tokens",
          "thoughts": "total_thought_tokens", "cached": "total_cached_tokens",
          "total": "total_tokens"}
DEFAULT_DAYS = 30


def _site_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _tokens(field: str) -> Coalesce:
    return Coalesce(Sum(Cast(KeyTextTransform(field, "usage"), BigIntegerField())), 0)


def usage_rows(*, start: date, end: date) -> list[dict[str, Any]]:
    """One row per day, user and model with usage in [start, end]: turns and token sums,
    deleted turns (SpentUsage) included. Turns without usage (queued, failed before the
    first byte, older ones) count nothing."""
    zone = _site_zone()
    since = datetime.combine(start, time.min, zone)
    until = datetime.combine(end + timedelta(days=1), time.min, zone)
    rows: dict[tuple, dict[str, Any]] = {}
    for sums in (_sums(Turn.objects, "conversation__owner__username", since, until),
                 _sums(SpentUsage.objects, "owner__username", since, until)):
        for row in sums:
            same = rows.setdefault((row["day"], row["user"], row["model"]), row)
            if same is not row:
                for name in ("turns", *TOKENS):
                    same[name] += row[name]
    # Sorted here: the databases' collations would order "@bob" and "alice" differently.
    return [rows[key] for key in sorted(rows)]


def _sums(rows: Any, user: str, since: datetime, until: datetime) -> Any:
    """Turns and token sums of `rows` (turns, or deleted turns) per day, user and model."""
    return (rows.filter(created__gte=since, created__lt=until, usage__isnull=False)
            .annotate(day=TruncDate("created", tzinfo=_site_zone()), user=F(user))
            .values("day", "user", "model")
            .annotate(turns=Count("pk"), **{name: _tokens(f) for name, f in TOKENS.items()})
            .order_by())


def total(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Turns and tokens of `rows`, summed."""
    return {name: sum(row[name] for row in rows) for name in ("turns", *TOKENS)}


def totals_by(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows summed per `key` ("user", "model" or "day"), in order of `key`."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return [{key: k, **total(groups[k])} for k in sorted(groups)]


CHART_WIDTH, CHART_HEIGHT = 720, 180
SEGMENTS = ("input", "output", "thoughts")  # stacked; cached tokens are part of input


def chart(rows: list[dict[str, Any]], *, start: date, end: date) -> dict[str, Any]:
    """A stacked bar per day (every day of the range, empty ones too), laid out for an SVG."""
    per_day = {row["day"]: row for row in totals_by(rows, "day")}
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    peak = max([sum(per_day[d][s] for s in SEGMENTS) for d in per_day] or [0]) or 1
    step = CHART_WIDTH / len(days)
    bars = []
    for n, day in enumerate(days):
        row = per_day.get(day, dict.fromkeys(TOKENS, 0))
        y, segments = float(CHART_HEIGHT), []
        for name in SEGMENTS:
            height = row[name] / peak * CHART_HEIGHT
            y -= height
            segments.append({"name": name, "y": round(y, 2), "height": round(height, 2)})
        bars.append({"day": day, "x": round((n + 0.1) * step, 2),
                     "width": round(step * 0.8, 2), "segments": segments, "row": row})
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "peak": peak, "bars": bars,
            "segments": SEGMENTS}


class UsageForm(forms.Form):
    start = forms.DateField(required=False, help_text="YYYY-MM-DD")
    end = forms.DateField(required=False, help_text="YYYY-MM-DD")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        limit = max(settings.USAGE_MAX_DAYS, 1)
        end = data.get("end") or timezone.localdate(timezone=_site_zone())
        start = data.get("start") or end - timedelta(days=min(DEFAULT_DAYS, limit) - 1)
        if start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if (end - start).days + 1 > limit:
            raise forms.ValidationError(
                f"At most {limit} days at once (USAGE_MAX_DAYS): choose a shorter range, or "
                "download several.")
        return {"start": start, "end": end}


def _range(request: HttpRequest) -> tuple[UsageForm, date, date]:
    """The form as sent, and the range to show: the one asked for, else the default."""
    form = UsageForm(request.GET)
    if form.is_valid():
        return form, form.cleaned_data["start"], form.cleaned_data["end"]
    default = UsageForm({})
    default.is_valid()
    return form, default.cleaned_data["start"], default.cleaned_data["end"]


def _table(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows as the template's table cells: their keys, turns, then tokens in column order
    (a blank model: a turn stored before turns recorded theirs)."""
    return [{"keys": [row[k] if row[k] != "" else "(unknown)" for k in keys],
             "turns": row["turns"],
             "tokens": [row[name] for name in TOKENS]} for row in rows]


def _cell(value: Any) -> Any:
    """A spreadsheet must not run a user name such as "=HYPERLINK(...)" as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(rows: list[dict[str, Any]], start: date, end: date) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{start}-{end}.csv"'
    writer = csv.writer(response)
    writer.writerow(["day", "user", "model", "turns", *(f"{name}_tokens" for name in TOKENS)])
    for row in rows:
        writer.writerow([_cell(row[k]) for k in ("day", "user", "model", "turns", *TOKENS)])
    return response


@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    """The usage page (admin.site.admin_view wraps it: staff only), or its CSV."""
    if not can_review(request.user):
        raise PermissionDenied
    form, start, end = _range(request)
    if request.GET.get("format") == "csv":
        if form.errors:
            return HttpResponse(" ".join(m for ms in form.errors.values() for m in ms),
                                status=400, content_type="text/plain; charset=utf-8")
        return _csv(usage_rows(start=start, end=end), start, end)
    rows = usage_rows(start=start, end=end)
    context = {
        **admin.site.each_context(request), "title": "Token usage", "form": form,
        "start": start, "end": end, "columns": list(TOKENS),
        "rows": _table(rows, ("day", "user", "model")),
        "by_user": _table(totals_by(rows, "user"), ("user",)),
        "by_model": _table(totals_by(rows, "model"), ("model",)),
        "total": _table([total(rows)], ()), "chart": chart(rows, start=start, end=end),
        "csv_query": f"start={start}&end={end}&format=csv", "time_zone": settings.TIME_ZONE,
        # What was typed stays in the fields, even when it was refused.
        "start_value": form.data.get("start", "") if form.errors else start.isoformat(),
        "end_value": form.data.get("end", "") if form.errors else end.isoformat(),
    }
    return render(request, "admin/usage.html", context)
