"""Reads of the SLA app, filtered by what the user may see (sla.view; deny by default)."""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from releases import policy as access
from releases import selectors as release_selectors
from releases.filters import apply as apply_filters
from releases.models import AgentService, Environment, Release
from sla import backtest, dora
from sla.filters import SlaReportFilter
from sla.models import GateRecord, SlaPolicyVersion, SlaReport, SlaSample
from sla.policy import DEFAULT_POLICY
from sla.services import policy_effective

# The verdict's precedence, most severe first: a copy of the table in sla/verdict.py's docstring (the README and
# the policy page show it; tests/sla/test_gate_v2_pages.py fails when the two drift apart).
PRECEDENCE = (
    ("rollbacked", "rollback", "p95 > stable p95 + 20 % (window test, or the sequential latency test within "
                               "seconds); >= 3 agent crashes; peak memory >= 2x the stable mean; an error-rate "
                               "regression when the policy says sequential_action: rollback; LLM quality: tool "
                               "error rate >= 5 points above stable and significantly higher "
                               "(tool_error_regression)"),
    ("blocked", "block_version", ">= 50 failed traces AND significantly worse than stable. While the ramp still "
                                 "moves, a pause rule firing in the same evaluation wins (the design's pause must "
                                 "be reachable); a paused canary that keeps failing is blocked once it fails 50 "
                                 "more times after the pause (escalation)"),
    ("blocked", "pause", "success rate below the 99 % floor (window binomial test or the sequential floor test); "
                         "an error-rate regression against stable (sequential test, default); LLM quality: mean "
                         "eval score >= 0.05 below stable and significantly lower (eval_score_regression)"),
    ("manual_review", "hold", "callback failures > 2 % beyond noise (exact binomial test); Prometheus failing N "
                              "times in a row; NODATA when the policy says so; LLM quality: cost per successful task "
                              "> stable's + 30 % and significantly so (Welch z), or the cost of most "
                              "canary traces unknown while stable's is known (cost_per_success). Sticky: the gate "
                              "never clears it, a person acknowledges it (resume or roll back, with a comment) on "
                              "the release page or the API"),
    ("watching", "hold", "not enough evidence (statistical power not reached: \"needs about N more requests\"), "
                         "young phase, an advance rule not met, a hole in the scrapes, the first window after a "
                         "Prometheus outage, NODATA, a Prometheus error"),
    ("verified", "ready_to_promote", "every advance rule passed, the phase ran one evaluation interval, and the "
                                     "phase's canary sample had the power to show the guarded regressions"),
)

# The power criterion: a copy of the comment above sla.stats.required_sample (checked by the same test).
POWER_FORMULA = ("z_(1-alpha) * sqrt(p_s (1 - p_s) (1/n_c + 1/n_s)) + z_power * sqrt(p_1 (1 - p_1) / n_c "
                 "+ p_s (1 - p_s) / n_s) <= p_1 - p_s")
POWER_FORMULA_WORDS = (
    "Two-sample one-sided comparison of proportions (normal approximation). H0: the canary fails (or exceeds the "
    "stable's p95) at the stable's rate p_s; H1: at p_1, the regression the policy guards (1 - floor for errors; "
    "the share above the stable's p95 / (1 + advance margin) for latency). With n_c canary traces since the phase "
    "began and n_s stable traces in the window, a rung is promoted only when the least n_c that satisfies the "
    "inequality at alpha = significance and power = power is reached; otherwise the gate watches and says how many "
    "more requests it needs.")

# Columns of the CSV export and the QA list, in order: the design shape first, then where it came from.
REPORT_COLUMNS = ("id", "version", "start_ts", "agent_group", "success_rate", "p95_latency_ms", "error_trace_ratio",
                  "callback_fail_rate", "eval_score", "status", "action", "service", "environment", "release_id", "gray_weight",
                  "outcome", "evaluated_at", "created_at", "summary", "reasons")

SERIES_FIELDS = ("canary_success_rate", "baseline_success_rate", "canary_p95_ms", "baseline_p95_ms",
                 "canary_error_ratio", "baseline_error_ratio", "canary_callback_fail_rate",
                 "baseline_callback_fail_rate", "canary_eval_score", "baseline_eval_score", "canary_requests",
                 "baseline_requests")


def report_list(*, user, version: str = "", environment: str = "", service: str = "", status: str = "",
                action: str = "", release_id: int | None = None) -> QuerySet:
    if not access.can(user, access.SLA_VIEW):
        return SlaReport.objects.none()
    # Lists never read the stored readings or the whole verdict: each quotes the tick's grouped PromQL, megabytes
    # per report in a large fleet. The reasons come out of the verdict in the database.
    qs = (SlaReport.objects.select_related("service", "environment").defer("readings", "verdict")
          .annotate(verdict_reasons=KeyTransform("reasons", "verdict"),
                    verdict_summary=KeyTransform("summary", "verdict")))
    return apply_filters(SlaReportFilter, qs, {"version": version, "environment": environment, "service": service,
                                               "status": status, "action": action, "release_id": release_id})


def report_get(*, user, report_id: int) -> SlaReport | None:
    return report_list(user=user).defer(None).filter(pk=report_id).first()


def report_row(report: SlaReport) -> dict:
    """A flat row: the design shape plus provenance (the CSV and the list)."""
    return {
        "id": report.pk, **report.design_shape(), "eval_score": report.eval_score, "service": report.service.name,
        "environment": report.environment.name, "release_id": report.release_id, "gray_weight": report.gray_weight,
        "outcome": report.outcome, "evaluated_at": report.evaluated_at.isoformat(),
        "created_at": report.created_at.isoformat(),
        "summary": (report.verdict_summary if hasattr(report, "verdict_summary") else report.verdict.get("summary"))
        or "",
        "reasons": (report.verdict_reasons if hasattr(report, "verdict_reasons") else report.verdict.get("reasons"))
        or [],
    }


def report_window_s(report: SlaReport) -> int | None:
    """The window every windowed number of this report was measured over (one per evaluation)."""
    for reading in report.readings.get("canary", {}).get("metrics", {}).values():
        return reading.get("window_s")
    return None


def report_findings(report: SlaReport) -> list[dict]:
    """Every rule with its number, threshold, query and window."""
    window = report_window_s(report)
    return [{**finding, "window_s": window} for finding in report.verdict.get("findings", [])]


def release_sla(*, user, release: Release, points: int = 240, until: datetime | None = None) -> dict:
    """The gate record of a release and its canary-vs-baseline history for the charts (`until`: the history up
    to that instant, for a snapshot's page).  `summary` is the last verdict's sentence; `manual_review` the
    pending review from the gate's state ({"since", "reason"}), or None."""
    if not access.can(user, access.SLA_VIEW):
        return {}
    record = GateRecord.objects.filter(release=release).first()
    samples = SlaSample.objects.filter(release=release)
    if until is not None:
        samples = samples.filter(evaluated_at__lte=until)
    samples = list(samples.order_by("-evaluated_at", "-id")[:points])[::-1]
    series = {"at": [s.evaluated_at.isoformat() for s in samples],
              "gray_weight": [s.gray_weight for s in samples],
              "status": [s.status for s in samples]}
    for name in SERIES_FIELDS:
        series[name] = [getattr(s, name) for s in samples]
    latest_report = SlaReport.objects.filter(release=release).order_by("-evaluated_at", "-id").first()
    gate = None
    if record is not None and record.evaluated_at is not None:
        gate = {
            "sequence": record.sequence, "status": record.status, "action": record.action,
            "outcome": record.outcome, "evaluated_at": record.evaluated_at.isoformat(),
            "evaluated_weight": record.evaluated_weight, "consecutive_errors": record.consecutive_errors,
            "last_error": record.last_error, "action_taken": record.action_taken,
            "healthy": record.healthy, "healthy_at": record.healthy_at.isoformat() if record.healthy_at else None,
        }
    verdict = record.last_verdict if record is not None else {}
    return {
        "release_id": release.pk,
        "summary": (verdict or {}).get("summary") or None,
        "manual_review": gate_manual_review(record),  # the page notes a review left open by a finished release
        "gate": gate,
        "verdict": {key: verdict.get(key) for key in ("at", "outcome", "status", "action", "summary", "healthy",
                                                       "reasons", "findings", "report")} if verdict else None,
        "latest_report_id": latest_report.pk if latest_report else None,
        "series": series,
    }


def gate_manual_review(record: GateRecord | None) -> dict | None:
    """The manual review waiting for a person ({"since": iso, "reason": words}), from the gate's stored state."""
    if record is None or not record.state:
        return None
    review = record.state.get("manual_review")
    if not review:
        return None
    return {"since": review.get("since"), "reason": review.get("reason", "")}


def policy_view(*, user, environment: Environment, service: AgentService | None = None) -> dict:
    """The effective policy of an environment (and service), its version history and the defaults."""
    if not access.can(user, access.SLA_VIEW):
        return {}
    rows = SlaPolicyVersion.objects.filter(environment=environment, service=service).order_by("-number")
    latest = rows.first()
    if service is None:
        environment_number = latest.number if latest else 0
    else:  # the base the service's overrides (if any) apply to
        environment_row = (SlaPolicyVersion.objects.filter(environment=environment, service=None)
                           .order_by("-number").first())
        environment_number = environment_row.number if environment_row else 0
    return {
        "environment": environment.name,
        "service": service.name if service else None,
        "number": latest.number if latest else 0,
        "environment_number": environment_number,
        "policy": policy_effective(environment=environment, service=service).to_dict(),
        "overrides": (latest.policy if latest else {}) if service else None,
        "defaults": DEFAULT_POLICY.to_dict(),
        "versions": [{"number": r.number, "policy": r.policy, "author": r.author_name, "comment": r.comment,
                      "created_at": r.created_at.isoformat()} for r in rows[:50]],
        "precedence": [{"status": status, "action": action, "fired_by": fired_by}
                       for status, action, fired_by in PRECEDENCE],
        "power_formula": POWER_FORMULA,
    }


def latest_verdicts(*, release_ids: list[int]) -> dict[int, dict]:
    """The gate's last verdict per release (for the fleet overview), in one query: {release_id: {"verdict", "action"}}."""
    rows = GateRecord.objects.filter(release_id__in=release_ids).exclude(status="").values_list(
        "release_id", "status", "action")
    return {release_id: {"verdict": status, "action": action} for release_id, status, action in rows}


def _snapshot(report: SlaReport | None) -> dict | None:
    if report is None:
        return None
    return {"id": report.pk, "release_id": report.release_id, "status": report.status, "action": report.action,
            "outcome": report.outcome, "gray_weight": report.gray_weight,
            "evaluated_at": report.evaluated_at.isoformat(), "success_rate": report.success_rate,
            "p95_latency_ms": report.p95_latency_ms, "error_trace_ratio": report.error_trace_ratio,
            "callback_fail_rate": report.callback_fail_rate,
            "summary": str((report.verdict or {}).get("summary", ""))[:300]}


def sla_evidence(release: Release) -> dict:
    """Approval evidence (releases.selectors.EVIDENCE_SOURCES["sla"]): the SLA verdict and latest snapshot of the
    same version in the previous environment it ran in, and the release's own latest snapshot (a canary waiting
    at a gray step). Only stored rows: the same state gives the same evidence."""
    earlier = (Release.objects.filter(service_id=release.service_id, version__tag=release.version.tag,
                                      environment__position__lt=release.environment.position)
               .select_related("environment").order_by("-environment__position", "-id").first())
    previous = None
    if earlier is not None:
        record = GateRecord.objects.filter(pk=earlier.pk).first()
        previous = {
            "environment": earlier.environment.name, "release_id": earlier.pk, "release_status": earlier.status,
            "verdict": ({"status": record.status, "action": record.action, "healthy": record.healthy_at is not None}
                        if record else None),
            "snapshot": _snapshot(SlaReport.objects.filter(release=earlier).order_by("-evaluated_at", "-id").first()),
        }
    own = SlaReport.objects.filter(release=release).order_by("-evaluated_at", "-id").first()
    return {"previous_environment": previous, "own_snapshot": _snapshot(own)}


# --- DORA and time to safety (sla/dora.py computes; these apply who may see what) ---------------------------


def dora_report(*, user, service: str = "", environment: str = "", since: datetime | None = None,
                now: datetime | None = None) -> list[dict]:
    """Weekly DORA rows over the releases the user may see (sla.view and release.view), see sla.dora."""
    if not access.can(user, access.SLA_VIEW):
        return []
    now = now or timezone.now()
    since = since or dora.default_since(now)
    releases = release_selectors.release_list(user=user, service=service, environment=environment)
    return dora.dora_weeks(dora.releases_in_period(releases, since=since), since=since, now=now)


def release_timeline(*, user, release: Release) -> dict | None:
    if not access.can(user, access.SLA_VIEW):
        return None
    return dora.release_timeline(release)


def policy_backtest(*, user, environment: str, policy, service: str = "", limit: int = 200) -> dict:
    """sla.backtest over the environment's past releases the user may see (sla.view and release.view)."""
    if not access.can(user, access.SLA_VIEW):
        return backtest.backtest(policy, Release.objects.none())
    visible = release_selectors.release_list(user=user).values("pk")
    return backtest.backtest(policy, backtest.past_releases(environment, service=service, limit=limit)
                             .filter(pk__in=visible))
