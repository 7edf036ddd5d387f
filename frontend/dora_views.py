"""The DORA page: weekly deployment frequency, lead time for changes, change failure rate and time to restore per
service and environment (sla.dora defines each figure; sla.selectors applies who may see what). The CSV export is
the API's /api/dora.csv with the same filters."""
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext

from frontend.access import page_requires
from releases import policy
from releases.models import AgentService, Environment
from sla import dora, selectors

_NAME = re.compile(r"^[a-z0-9-]{0,63}$")
MAX_WEEKS = 104


def _filters(request) -> tuple[dict, list[str], str]:
    filters, problems, query = {"service": "", "environment": "", "since": None}, [], []
    for name in ("service", "environment"):
        value = request.GET.get(name, "")[:100]
        if _NAME.match(value):
            filters[name] = value
            if value:
                query.append(f"{name}={value}")
        else:
            problems.append(gettext("%(name)s: must be a name of lowercase letters, digits and '-'") % {"name": name})
    since = request.GET.get("since", "")[:10]
    if since:
        try:
            when = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=dt_timezone.utc)
        except ValueError:
            problems.append(gettext("since: must be a date such as 2026-11-02"))
        else:
            now = timezone.now()
            if when > now or when < now - timedelta(weeks=MAX_WEEKS):
                problems.append(gettext("since: must be within the last %(weeks)s weeks") % {
                                    "weeks": MAX_WEEKS})
            else:
                filters["since"] = when
                query.append(f"since={since}")
    return filters, problems, "&".join(query)


@page_requires(policy.SLA_VIEW)
def dora_page(request):
    filters, problems, query = _filters(request)
    rows = selectors.dora_report(user=request.user, **filters)
    pairs = {}
    for row in rows:
        pairs.setdefault(f"{row['service']} / {row['environment']}", []).append(row)
    series = {"weeks": sorted({row["week"] for row in rows}),
              "pairs": [{"label": label, **{field: [r[field] for r in items] for field in (
                  "deployments", "lead_time_median_s", "change_failure_rate", "time_to_restore_median_s")}}
                        for label, items in pairs.items()]}
    totals = {
        "deployments": sum(r["deployments"] for r in rows),
        "changes": sum(r["changes"] for r in rows),
        "failures": sum(r["failures"] for r in rows),
    }
    totals["change_failure_rate"] = (totals["failures"] / totals["changes"]) if totals["changes"] else None
    return render(request, "frontend/dora.html", {
        "rows": [r for r in rows if r["deployments"] or r["changes"]], "series": series, "filters": filters,
        "problems": problems, "query": query, "totals": totals, "weeks": dora.DEFAULT_WEEKS,
        "services": AgentService.objects.order_by("name").values_list("name", flat=True),
        "environments": Environment.objects.order_by("position").values_list("name", flat=True),
        "since_value": filters["since"].date().isoformat() if filters["since"] else "",
    })
