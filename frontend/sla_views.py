"""SLA pages: the release page's SLA section (verdict sentence, manual review, rules, charts), the QA snapshot
list and detail pages, and the read-only policy page of an environment.

Reads go through sla.selectors (filtered by releases.policy); exports reuse the API's JSON and CSV endpoints;
the one write (settling a manual review) goes through sla.services.gate_acknowledge, like the API.
"""
import csv
import io
import json
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from frontend.access import page_requires
from releases import policy
from releases import selectors as release_selectors
from releases.choices import CANARY_STATUSES
from releases.errors import DomainError
from releases.keyset import BadCursor, keyset_page
from releases.models import AgentService, Environment
from releases.services import Actor
from sla import explain, selectors, services
from sla.models import REPORT_ACTIONS, REPORT_STATUSES
from sla.policy import PolicyInvalid, SlaPolicy

_FILTER = {"version": re.compile(r"^[A-Za-z0-9._-]{0,100}$"), "environment": re.compile(r"^[a-z0-9-]{0,63}$"),
           "service": re.compile(r"^[a-z0-9-]{0,63}$")}


@login_required
def release_sla_section(request, release_id: int):
    release = release_selectors.release_get(user=request.user, release_id=release_id)
    if release is None:
        raise Http404("no such release")
    allowed = bool(policy.can(request.user, policy.SLA_VIEW))
    sla = selectors.release_sla(user=request.user, release=release) if allowed else {}
    timeline = selectors.release_timeline(user=request.user, release=release) if allowed else None
    if timeline is not None:
        timeline["shown"] = any(step["at"] for step in timeline["steps"][:3]) or timeline["failed"] \
            or timeline["lead_time_s"] is not None
    can_resume = bool(policy.can(request.user, policy.RELEASE_RESUME))
    can_rollback = bool(policy.can(request.user, policy.RELEASE_ROLLBACK))
    settlers = sorted(set(policy.roles_with(policy.RELEASE_RESUME)) | set(policy.roles_with(policy.RELEASE_ROLLBACK)))
    return render(request, "frontend/sla/_release_sla.html", {
        "release": release, "allowed": allowed, "sla": sla, "timeline": timeline, "is_canary": release.status in CANARY_STATUSES, "can_resume": can_resume, "can_rollback": can_rollback,
        "can_settle": can_resume or can_rollback, "settlers": settlers,
        "resumers": policy.roles_with(policy.RELEASE_RESUME), "rollbackers": policy.roles_with(policy.RELEASE_ROLLBACK),
        "max_comment": settings.ROLLGATE_MAX_COMMENT_LENGTH,
    })


ACKNOWLEDGE_WORDS = {"resume": "resumed: the gate judges the release again",
                     "rollback": "rolled back: canary traffic cut"}


@login_required
@require_POST
def release_sla_acknowledge(request, release_id: int):
    """Settle the gate's manual review from the release page (resume or roll back, comment required), then go
    back to the release page, where the outcome (or the refusal, naming the field) is shown."""
    if release_selectors.release_get(user=request.user, release_id=release_id) is None:
        raise Http404("no such release")
    decision = request.POST.get("decision", "")
    comment = request.POST.get("comment", "")
    if len(comment) > settings.ROLLGATE_MAX_COMMENT_LENGTH:
        messages.error(request, gettext("manual review not settled: comment: at most "
                                        "%(most)s characters (it had %(length)s); "
                                        "nothing was changed") % {
                                    "most": settings.ROLLGATE_MAX_COMMENT_LENGTH,
                                    "length": len(comment)})
        return redirect("release-detail", release_id=release_id)
    try:
        services.gate_acknowledge(actor=Actor.of(request.user), release_id=release_id, decision=decision,
                                  comment=comment)
    except DomainError as error:
        where = f"{error.field}: " if error.field and not error.message.startswith(error.field) else ""
        messages.error(request, gettext("manual review not settled: %(where)s%(message)s") % {
                                    "where": where, "message": error.message})
    else:
        messages.success(request, gettext("manual review settled, %(outcome)s") % {
                                      "outcome": ACKNOWLEDGE_WORDS[decision]})
    return redirect("release-detail", release_id=release_id)


def _filters(request) -> tuple[dict, list[str]]:
    filters, problems = {}, []
    for name, rule in _FILTER.items():
        value = request.GET.get(name, "")[:100]
        if rule.match(value):
            filters[name] = value
        else:
            problems.append(gettext("%(name)s: not a valid %(name)s") % {"name": name})
            filters[name] = ""
    status = request.GET.get("status", "")
    if status and status not in REPORT_STATUSES:
        problems.append(gettext("status: one of %(statuses)s") % {
                            "statuses": ', '.join(REPORT_STATUSES)})
        status = ""
    filters["status"] = status
    action = request.GET.get("action", "")
    if action and action not in REPORT_ACTIONS:
        problems.append(gettext("action: one of %(actions)s") % {"actions": ', '.join(REPORT_ACTIONS)})
        action = ""
    filters["action"] = action
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
               "actions": REPORT_ACTIONS, "allowed": allowed, "query": query, "first_page": not cursor}
    template = "frontend/sla/_reports_table.html" if request.headers.get("HX-Request") else "frontend/sla/reports.html"
    return render(request, template, context)


@login_required
def sla_report(request, report_id: int):
    report = selectors.report_get(user=request.user, report_id=report_id)
    if report is None:
        raise Http404("no such SLA report")
    # The chart: the release's canary-vs-stable history up to the instant this snapshot was taken.
    history = selectors.release_sla(user=request.user, release=report.release, until=report.evaluated_at)
    return render(request, "frontend/sla/report.html", {
        "report": report, "row": selectors.report_row(report), "shape": report.design_shape(),
        "shape_rows": _shape_rows(report.design_shape()), "summary": report.verdict.get("summary") or "",
        "findings": selectors.report_findings(report), "window_s": selectors.report_window_s(report),
        "canary": report.readings.get("canary", {}), "baseline": report.readings.get("baseline", {}),
        "series": history.get("series") if history else None,
    })


# The design shape's numbers and their units (sla.explain), for the snapshot page.
SHAPE_UNITS = {"success_rate": explain.RATIO, "p95_latency_ms": explain.MS, "error_trace_ratio": explain.RATIO,
               "callback_fail_rate": explain.RATIO}


def _shape_rows(shape: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in shape.items():
        if value is None:
            shown = "n/a"
        elif key in SHAPE_UNITS:
            shown = explain.show(value, SHAPE_UNITS[key])
        else:
            shown = str(value)
        rows.append((key, shown))
    return rows


@page_requires(policy.SLA_VIEW)
def sla_policy(request, environment: str):
    """Read-only: the environment's effective SLA policy (or a service's, ?service=), the verdict's precedence
    and the power criterion.  Ops change it through PUT /api/sla/policies/<environment>/."""
    env = Environment.objects.filter(name=environment[:30]).first()
    if env is None:
        raise Http404("no such environment")
    service_name = request.GET.get("service", "")[:63]
    service = AgentService.objects.filter(name=service_name).first() if service_name else None
    if service_name and service is None:
        raise Http404("no such service")
    view = selectors.policy_view(user=request.user, environment=env, service=service)
    overrides = view["overrides"] or {}
    fields = [{"name": name, "value": value, "default": view["defaults"].get(name),
               "changed": value != view["defaults"].get(name), "overridden": name in overrides}
              for name, value in view["policy"].items()]
    trial = _backtest_trial(request, env, service_name if service else "", view["policy"])
    return render(request, "frontend/sla/policy.html", {
        "trial": trial,
        "environment": env, "service": service, "view": view, "fields": fields,
        "precedence": selectors.PRECEDENCE, "power_formula": selectors.POWER_FORMULA,
        "power_words": selectors.POWER_FORMULA_WORDS,
        "services": AgentService.objects.filter(sla_policy_versions__environment=env).distinct().order_by("name"),
        "can_manage": bool(policy.can(request.user, policy.SLA_POLICY_MANAGE)),
    })


def _backtest_trial(request, env, service: str, current: dict) -> dict | None:
    """?candidate={"field": value, ...}: the changes over the effective policy, their diff and the backtest of the
    result on the environment's past releases (sla/backtest.py). Read-only; ops save with PUT on the API."""
    text = request.GET.get("candidate", "")
    if not text:
        return None
    trial = {"text": text[:4000], "problems": [], "diff": [], "result": None}
    try:
        changes = json.loads(text[:4000])
    except ValueError as error:
        trial["problems"].append(gettext("candidate: not JSON (%(error)s)") % {"error": error})
        return trial
    if not isinstance(changes, dict):
        trial["problems"].append(gettext("candidate: must be a JSON object of policy fields, e.g. "
                                         "{\"pause_eval_score_drop\": 0.03}"))
        return trial
    try:
        candidate = SlaPolicy.from_dict(current).with_overrides(changes)
    except PolicyInvalid as error:
        trial["problems"] += [f"{name}: {rule}" for name, rule in error.errors.items()]
        return trial
    after = candidate.to_dict()
    trial["diff"] = [{"name": name, "before": current.get(name), "after": after[name]}
                     for name in after if after[name] != current.get(name)]
    trial["result"] = selectors.policy_backtest(user=request.user, environment=env.name, policy=candidate,
                                                service=service)
    return trial


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
