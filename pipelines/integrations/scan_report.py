"""Scan reports as JSON (kept as a stage artefact) and as a small, escaped HTML page."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from html import escape
from string import Template

from pipelines.integrations.scan_policy import ScanDecision
from pipelines.integrations.scan_results import CheckResult

_PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Scan report: $subject</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
.verdict{font-size:1.3rem;font-weight:600}.blocked{color:#b00020}.needs_override{color:#b35c00}
.warn,.unverified{color:#8a6d00}.clear,.passed{color:#1b7f3b}.findings{color:#b35c00}
</style></head><body>
<h1>Scan report: $subject</h1>
<p>Environment: $environment &middot; generated $generated</p>
<p class="verdict $verdict_class">Verdict: $verdict</p>
<ul>$reasons</ul>
<h2>Checks</h2>
<table><tr><th>Check</th><th>Status</th><th>Summary</th><th>Findings</th></tr>$checks</table>
$finding_tables
</body></html>
""")


def scan_report_json(*, subject: str, results: Iterable[CheckResult],
                     decision: ScanDecision) -> dict:
    """The JSON artefact: everything the HTML shows, machine-readable."""
    return {
        "subject": subject,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "decision": decision.as_dict(),
        "checks": [r.as_dict() for r in results],
    }


def scan_report_html(report: dict) -> str:
    """Render `scan_report_json` output. Every value from tools or users is escaped."""
    decision = report["decision"]
    checks_rows, tables = [], []
    for check in report["checks"]:
        checks_rows.append(
            f"<tr><td>{escape(check['name'])}</td>"
            f"<td class=\"{escape(check['status'])}\">{escape(check['status'])}</td>"
            f"<td>{escape(check['reason'])}</td><td>{len(check['findings'])}</td></tr>")
        if check["findings"]:
            rows = "".join(
                f"<tr><td>{escape(f['severity'])}</td><td>{escape(f['identifier'])}</td>"
                f"<td>{escape(f['package'])}</td><td>{escape(f['installed_version'])}</td>"
                f"<td>{escape(f['fixed_version'])}</td><td>{escape(f['location'])}</td>"
                f"<td>{escape(f['message'])}</td></tr>"
                for f in check["findings"])
            tables.append(
                f"<h2>{escape(check['name'])}</h2><table><tr><th>Severity</th><th>Id</th>"
                "<th>Package</th><th>Installed</th><th>Fixed in</th><th>Where</th>"
                f"<th>Message</th></tr>{rows}</table>")
    return _PAGE.substitute(
        subject=escape(report["subject"]),
        environment=escape(decision["environment"]),
        generated=escape(report["generated_at"]),
        verdict=escape(decision["verdict"]),
        verdict_class=escape(decision["verdict"]),
        reasons="".join(f"<li>{escape(r)}</li>" for r in decision["reasons"]) or "<li>none</li>",
        checks="".join(checks_rows),
        finding_tables="".join(tables),
    )


def scan_report_dumps(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
