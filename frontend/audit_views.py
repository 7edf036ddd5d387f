"""The audit log for auditors (and everyone else the policy lets read it): filters, pages, streaming CSV.

At 2 million events neither the page nor the export may read the table whole: the page is a keyset page (a cursor
instead of ?page=N, no COUNT(*)), the export reads keyset chunks in a worker thread and sends each as it is ready."""
import csv
import io
from datetime import datetime

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db.models import CharField, Func, Q, TextField
from django.db.models.functions import Cast
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from frontend.access import is_htmx, page_requires
from frontend.forms import AuditFilterForm
from releases import policy, selectors
from releases.keyset import BadCursor, keyset_page
from releases.models import Environment

PAGE_SIZE = 100
EXPORT_CHUNK = 5000
# One export per user at a time. The lock is renewed with every chunk, so an export whose worker died frees it
# after this many seconds.
EXPORT_LOCK_SECONDS = 60
CSV_COLUMNS = ["id", "created_at", "actor", "action", "object_type", "object_id", "release_id", "service",
               "environment", "from_state", "to_state", "reason", "details"]


def _filtered(request):
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return form, None
    return form, selectors.audit_list(user=request.user, **form.filters())


@page_requires(policy.AUDIT_VIEW)
def audit_log(request):
    form, events = _filtered(request)
    page = None
    status = 200
    if events is not None:
        try:
            page = keyset_page(events, field="created_at", size=PAGE_SIZE, cursor=request.GET.get("cursor", ""))
        except BadCursor as error:
            form.add_error(None, f"cursor: {error}")
            status = 400
    query = request.GET.copy()
    query.pop("cursor", None)
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "first_page": not request.GET.get("cursor"),
               "environments": list(Environment.objects.values_list("name", flat=True))}
    if not is_htmx(request):
        context["chain"] = selectors.audit_chain_state(user=request.user)
    template = "frontend/_audit_table.html" if is_htmx(request) else "frontend/audit.html"
    return render(request, template, context, status=status)


def _csv_safe(value) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: quote them so an export cannot run anything."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


class _IsoUtc(Func):
    """A timestamp as ISO-8601 text in UTC, made by PostgreSQL (2026-01-31T08:00:00.000000+00:00)."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    output_field = CharField()


# Time and details leave PostgreSQL as text: converting 5 000 timestamps to aware datetimes and back, and parsing
# each JSON document to dump it again, cost half of the export's time.
EXPORT_FIELDS = ["id", "created_text", "actor_name", "action", "object_type", "object_id", "release_id",
                 "service__name", "environment__name", "from_state", "to_state", "reason", "details_text"]


def _export_chunk(events, after) -> tuple[str, tuple | None]:
    """The next EXPORT_CHUNK events older than `after` (created_at, id) as CSV text, and the new position."""
    if after is not None:
        at, pk = after
        events = events.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk), created_at__lte=at)
    rows = list(events.annotate(created_text=_IsoUtc("created_at"), details_text=Cast("details", TextField()))
                .order_by("-created_at", "-id").values_list(*EXPORT_FIELDS)[:EXPORT_CHUNK])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(
        [pk, created, _csv_safe(actor), action, object_type, object_id, release_id or "",
         service or "", environment or "", from_state, to_state, _csv_safe(reason),
         _csv_safe(details)]
        for (pk, created, actor, action, object_type, object_id, release_id, service, environment, from_state,
             to_state, reason, details) in rows)
    position = (datetime.fromisoformat(rows[-1][1]), rows[-1][0]) if len(rows) == EXPORT_CHUNK else None
    return out.getvalue(), position


async def _export_stream(events, lock_key: str):
    """Chunks of CSV as they are read: memory stays at one chunk, whatever the number of events."""
    try:
        header = io.StringIO()
        csv.writer(header).writerow(CSV_COLUMNS)
        yield header.getvalue()
        position = None
        while True:
            text, position = await sync_to_async(_export_chunk)(events, position)
            if text:
                yield text
            if position is None:
                return
            await cache.atouch(lock_key, EXPORT_LOCK_SECONDS)
    finally:
        await cache.adelete(lock_key)


@page_requires(policy.AUDIT_VIEW)
def audit_export(request):
    form, events = _filtered(request)
    if events is None:
        return render(request, "frontend/audit.html", {"form": form, "page": None, "query": ""}, status=400)
    lock_key = f"audit-export:{request.user.pk}"
    if not cache.add(lock_key, timezone.now().isoformat(), EXPORT_LOCK_SECONDS):
        return HttpResponse("An audit export of yours is still running: wait for it to finish (or cancel the "
                            "download), then export again.", status=409, content_type="text/plain")
    response = StreamingHttpResponse(_export_stream(events, lock_key), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="rollgate-audit-{stamp}.csv"'
    return response
