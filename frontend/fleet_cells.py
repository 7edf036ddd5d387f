"""The fleet table's body, rendered in Python.

With 1 000 services x 4 environments the page has 4 000 cells; Django's template engine spent ~0.5 s walking
their nodes, string formatting takes a few milliseconds. Every value is escaped here; the markup stays the one the
template had (frontend/templates/frontend/_fleet_table.html includes the result)."""
from django.utils.html import escape
from django.utils.safestring import mark_safe


def _status(status: str) -> str:
    return f'<span class="status s-{status}">{status}</span>'


def _cell(cell, show_sla: bool) -> str:
    parts = []
    live, canary, other = cell.live, cell.canary, cell.other
    if live:
        split = f' <span class="muted">{cell.stable_weight} %</span>' if canary else ""
        parts.append(f'<div class="ln"><span class="dot live"></span><a href="/releases/{live.pk}/">'
                     f"{escape(live.tag)}</a>{split}</div>")
    if canary:
        w = canary.gray_weight
        parts.append(f'<div class="ln"><span class="dot canary"></span><a href="/releases/{canary.pk}/">'
                     f'{escape(canary.tag)}</a> <span class="bar" title="{w} %"><i style="width:{w}%">'
                     f"</i></span> {w} % {_status(canary.status)}</div>")
    if other:
        waiting = ""
        if cell.waiting:
            needs = ", ".join(f"{n} {escape(role)}" for role, n in cell.waiting.items())
            waiting = f' <span class="tag warn" title="approvals missing">needs {needs}</span>'
        parts.append(f'<div class="ln"><a href="/releases/{other.pk}/">#{other.pk} {escape(other.tag)}</a> '
                     f"{_status(other.status)}{waiting}</div>")
    if show_sla and cell.verdict:
        judged = canary or live  # the verdict belongs to the canary (or the live release), not to `other`
        verdict = escape(cell.verdict.get("verdict", ""))
        parts.append(f'<div class="ln">SLA {escape(judged.tag)} <span class="status v-{verdict}">{verdict}</span>'
                     f"</div>")
    if not live and not cell.latest:
        parts.append('<span class="muted">—</span>')
    return "<td>" + "".join(parts) + "</td>"


def render_rows(rows, show_sla: bool) -> str:
    return mark_safe("".join(
        f'<tr><th class="service">{escape(row.service.name)}</th>'
        + "".join(_cell(cell, show_sla) for cell in row.cells) + "</tr>"
        for row in rows))
