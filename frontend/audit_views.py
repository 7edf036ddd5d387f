"""The audit log for auditors (and everyone else the policy lets read it): filters, pages, streaming CSV."""
import csv

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from frontend.access import is_htmx, page_requires
from frontend.forms import AuditFilterForm
from releases import policy, selectors
from releases.models import Environment

PAGE_SIZE = 100
CSV_COLUMNS = ["id", "created_at", "actor", "action", "object_type", "object_id", "release_id", "service",
               "environment", "from_state", "to_state", "reason", "details"]


def _filtered(request):
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return form, None
    return form, selectors.audit_list(user=request.user, **form.filters()).order_by("-created_at", "-id")


@page_requires(policy.AUDIT_VIEW)
def audit_log(request):
    form, events = _filtered(request)
    page = None
    if events is not None:
        page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(),
               "environments": list(Environment.objects.values_list("name", flat=True))}
    if not is_htmx(request):
        context["chain"] = selectors.audit_chain_state(user=request.user)
    return render(request, "frontend/_audit_table.html" if is_htmx(request) else "frontend/audit.html", context)


class _Echo:
    def write(self, value):
        return value


def _csv_safe(value) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: quote them so an export cannot run anything."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _rows(events):
    import json

    yield CSV_COLUMNS
    for e in events.iterator(chunk_size=2000):
        yield [e.pk, e.created_at.isoformat(), _csv_safe(e.actor_name), e.action, e.object_type, e.object_id,
               e.release_id or "", e.service.name if e.service_id else "",
               e.environment.name if e.environment_id else "", e.from_state, e.to_state, _csv_safe(e.reason),
               _csv_safe(json.dumps(e.details, sort_keys=True))]


@page_requires(policy.AUDIT_VIEW)
def audit_export(request):
    form, events = _filtered(request)
    if events is None:
        return render(request, "frontend/audit.html", {"form": form, "page": None, "query": ""}, status=400)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in _rows(events)), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="rollgate-audit-{stamp}.csv"'
    return response
