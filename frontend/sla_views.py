"""SLA pages: the release page's SLA section (verdict + charts) and the QA snapshot list and detail pages.

Reads go through sla.selectors (filtered by releases.policy); exports reuse the API's JSON and CSV endpoints.
"""
import csv
import io
import re

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render

from frontend.access import page_requires
from releases import policy
from releases import selectors as release_selectors
from releases.keyset import BadCursor, keyset_page
from sla import selectors
from sla.models import REPORT_STATUSES

_FILTER = {"version": re.compile(r"^[A-Za-z0-9._-]{0,100}$"), "environment": re.compile(r"^[a-z0-9-]{0,63}$"),
           "service": re.compile(r"^[a-z0-9-]{0,63}$")}


@login_required
def release_sla_section(request, release_id: int):
    release = release_selectors.release_get(user=request.user, release_id=release_id)
    if release is None:
        raise Http404("no such release")
    allowed = bool(policy.can(request.user, policy.SLA_VIEW))
    sla = selectors.release_sla(user=request.user, release=release) if allowed else {}
    return render(request, "frontend/sla/_release_sla.html", {"release": release, "allowed": allowed, "sla": sla})


def _filters(request) -> tuple[dict, list[str]]:
    filters, problems = {}, []
    for name, rule in _FILTER.items():
        value = request.GET.get(name, "")[:100]
        if rule.match(value):
            filters[name] = value
        else:
            problems.append(f"{name}: not a valid {name}")
            filters[name] = ""
    status = request.GET.get("status", "")
    if status and status not in REPORT_STATUSES:
        problems.append(f"status: one of {', '.join(REPORT_STATUSES)}")
        status = ""
    filters["status"] = status
    return filters, problems


@page_requires(policy.SLA_VIEW)
def sla_reports(request):
    filters, problems = _filters(request)
    allowed = bool(policy.can(request.user, policy.SLA_VIEW))
    cursor = request.GET.get("cursor", "")
    try:  # newest first, 50 a page by cursor: no COUNT(*) and no OFFSET over every snapshot ever taken
        page = keyset_page(selectors.report_list(user=request.user, **filters), field="evaluated_at", size=50,
                           cursor=cursor)
    except BadCursor as error:
        problems = [*problems, f"cursor: {error}"]
        page = keyset_page(selectors.report_list(user=request.user, **filters), field="evaluated_at", size=50)
        cursor = ""
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    context = {"page": page, "filters": filters, "problems": problems, "statuses": REPORT_STATUSES,
               "allowed": allowed, "query": query, "first_page": not cursor}
    template = "frontend/sla/_reports_table.html" if request.headers.get("HX-Request") else "frontend/sla/reports.html"
    return render(request, template, context)


@login_required
def sla_report(request, report_id: int):
    report = selectors.report_get(user=request.user, report_id=report_id)
    if report is None:
        raise Http404("no such SLA report")
    return render(request, "frontend/sla/report.html", {
        "report": report, "row": selectors.report_row(report), "shape": report.design_shape(),
        "findings": selectors.report_findings(report), "window_s": selectors.report_window_s(report),
        "canary": report.readings.get("canary", {}), "baseline": report.readings.get("baseline", {}),
    })


@login_required
def sla_report_csv(request, report_id: int):
    report = selectors.report_get(user=request.user, report_id=report_id)
    if report is None:
        raise Http404("no such SLA report")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rule", "fired", "effect", "measured", "threshold", "window_s", "query", "text"])
    for f in selectors.report_findings(report):
        writer.writerow([f.get(k) if f.get(k) is not None else "" for k in
                         ("rule", "fired", "effect", "measured", "threshold", "window_s", "query", "text")])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sla-report-{report.pk}.csv"'
    return response
