"""DORA figures and time to safety, read from what Rollgate already stores (reads only; nothing is written).

Per service, environment and ISO week (Monday 00:00 UTC):

* **deployments**: releases that went live that week (a person's or the gate's promotion, or a rollout reaching
  100 %; a release restored by a rollback is not a new deployment).
* **lead time for changes**: live time minus the commit time (`Version.committed_at`, from the GitLab webhook or
  `committed_at` at release create); the median over that week's deployments whose commit time is known.
* **change failure rate**: of the releases that reached traffic that week (first move to gray or live), the share
  that were later rolled back or blocked.
* **time to restore**: for each of those failures, breach onset -> traffic back on stable; the median.

A release's **timeline** (the release page shows it): breach onset -> verdict -> action -> stable.

* *breach onset*: the first gate evaluation of the unbroken run of samples, ending at the verdict (or at the
  rollback when a person acted without one), in which the canary read worse than stable: success rate lower by
  more than BREACH_MARGIN, error-trace or callback-failure ratio higher by more than BREACH_MARGIN, mean eval score
  lower by more than EVAL_MARGIN, or p95 more than P95_MARGIN above stable's.  No such sample (no gate history, or
  it was pruned): the onset is unknown and the failure is left out of the time to restore (counted in
  `restore_unknown`).  When the rule that stopped the canary
  measures something the chart samples do not carry (CHARTED_RULES: tool errors, cost, crashes, memory, ...),
  the timeline says so and names the rule instead of claiming the canary never read worse.
* *verdict*: the first gate evaluation that stopped the canary (pause, block, rollback) or asked for manual review.
* *action*: the first audit row after it that took the canary's traffic (paused, rolled back or blocked).
* *stable*: the audit row that gave all traffic back to stable (the release rolled back or blocked; for a live
  release, the same transaction restored the one it replaced).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from releases.choices import ReleaseStatus as S
from releases.models import AuditEvent, Release
from sla import explain
from sla.models import SlaReport, SlaSample

BREACH_MARGIN = 0.005  # absolute, on ratios (half a percentage point)
P95_MARGIN = 0.20  # the policy's default latency rollback margin: canary p95 > stable p95 * 1.2
EVAL_MARGIN = 0.05  # the policy's default eval-score pause margin: canary mean score < stable's - 0.05
# The gate's rules whose measure is a column of the chart samples (SlaSample), the only ones the onset can see.
CHARTED_RULES = frozenset({
    "success_rate_floor", "success_floor_sequential", "failure_rate_vs_baseline", "error_regression_sequential",
    "failed_traces", "callback_failure_rate", "p95_latency_rollback", "latency_regression_sequential",
    "success_rate_advance", "p95_latency_advance", "eval_score_regression"})
TRAFFIC_STATES = frozenset({S.GRAY, S.LIVE})
FAILED_STATES = frozenset({S.ROLLED_BACK, S.BLOCKED})
STOPPED_STATES = frozenset({S.PAUSED, S.ROLLED_BACK, S.BLOCKED})
STOP_ACTIONS = frozenset({"pause", "block_version", "rollback"})
NOT_A_DEPLOYMENT = frozenset({"release.restore"})  # a rollback handing traffic back is not a new deployment
DEFAULT_WEEKS = 12

DORA_COLUMNS = ("service", "environment", "week", "deployments", "lead_time_median_s", "lead_time_count",
                "changes", "failures", "change_failure_rate", "time_to_restore_median_s", "restores",
                "restore_unknown")


@dataclass
class ReleaseFacts:
    release_id: int
    service: str
    environment: str
    tag: str
    committed_at: datetime | None = None
    traffic_at: datetime | None = None
    live_at: datetime | None = None
    failed_at: datetime | None = None
    failed_to: str = ""
    onset_at: datetime | None = None
    verdict_at: datetime | None = None
    action_at: datetime | None = None
    events: list = field(default_factory=list)

    @property
    def lead_time_s(self) -> float | None:
        if self.live_at is None or self.committed_at is None:
            return None
        return max(0.0, (self.live_at - self.committed_at).total_seconds())

    @property
    def failed(self) -> bool:
        return self.failed_at is not None and self.traffic_at is not None and self.failed_at >= self.traffic_at

    @property
    def restore_s(self) -> float | None:
        if not self.failed or self.onset_at is None:
            return None
        return max(0.0, (self.failed_at - self.onset_at).total_seconds())


def week_start(when: datetime) -> datetime:
    when = when.astimezone(dt_timezone.utc)
    monday = when - timedelta(days=when.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


def default_since(now: datetime) -> datetime:
    return week_start(now) - timedelta(weeks=DEFAULT_WEEKS - 1)


def _worse(sample: dict) -> bool:
    def pair(name):
        return sample.get(f"canary_{name}"), sample.get(f"baseline_{name}")

    canary, stable = pair("success_rate")
    if canary is not None and stable is not None and canary < stable - BREACH_MARGIN:
        return True
    for name in ("error_ratio", "callback_fail_rate"):
        canary, stable = pair(name)
        if canary is not None and stable is not None and canary > stable + BREACH_MARGIN:
            return True
    canary, stable = pair("eval_score")
    if canary is not None and stable is not None and canary < stable - EVAL_MARGIN:
        return True
    canary, stable = pair("p95_ms")
    return canary is not None and stable is not None and stable > 0 and canary > stable * (1 + P95_MARGIN)


_SAMPLE_FIELDS = ("release_id", "sequence", "evaluated_at", "status", "action", "canary_success_rate",
                  "baseline_success_rate", "canary_p95_ms", "baseline_p95_ms", "canary_error_ratio",
                  "baseline_error_ratio", "canary_callback_fail_rate", "baseline_callback_fail_rate",
                  "canary_eval_score", "baseline_eval_score")


def _place_gate_history(facts: ReleaseFacts, samples: list[dict], transitions: list[dict]) -> None:
    """Onset, verdict and action of one release from its samples (by sequence) and its status audit rows."""
    end = facts.failed_at
    stop = next((s for s in samples if s["action"] in STOP_ACTIONS or s["status"] == "manual_review"), None)
    if stop is not None and (end is None or stop["evaluated_at"] <= end):
        facts.verdict_at = stop["evaluated_at"]
        run_end = samples.index(stop)
    else:
        run_end = max((i for i, s in enumerate(samples) if end is None or s["evaluated_at"] <= end), default=-1)
    onset = None
    for index in range(run_end, -1, -1):
        if not _worse(samples[index]):
            break
        onset = samples[index]["evaluated_at"]
    facts.onset_at = onset
    since = facts.verdict_at or facts.onset_at
    if since is not None:
        facts.action_at = next((t["created_at"] for t in transitions
                                if t["to_state"] in STOPPED_STATES and t["created_at"] >= since), None)


def release_facts(releases) -> list[ReleaseFacts]:
    """The DORA facts of each release in the queryset: three queries whatever their number."""
    rows = {r.pk: ReleaseFacts(r.pk, r.service.name, r.environment.name, r.version.tag, r.version.committed_at)
            for r in releases.select_related("service", "environment", "version")}
    if not rows:
        return []
    transitions: dict[int, list[dict]] = {rid: [] for rid in rows}
    for row in (AuditEvent.objects.filter(release_id__in=list(rows), object_type="release")
                .exclude(to_state="").order_by("created_at", "id")
                .values("release_id", "action", "from_state", "to_state", "created_at", "actor_name", "reason")):
        transitions[row["release_id"]].append(row)
        facts = rows[row["release_id"]]
        if row["to_state"] == row["from_state"]:
            continue
        if row["to_state"] in TRAFFIC_STATES and facts.traffic_at is None:
            facts.traffic_at = row["created_at"]
        if row["to_state"] == S.LIVE and row["action"] not in NOT_A_DEPLOYMENT and facts.live_at is None:
            facts.live_at = row["created_at"]
        if row["to_state"] in FAILED_STATES and facts.failed_at is None:
            facts.failed_at, facts.failed_to = row["created_at"], row["to_state"]
    failed = [rid for rid, f in rows.items() if f.failed]
    samples: dict[int, list[dict]] = {rid: [] for rid in failed}
    for sample in (SlaSample.objects.filter(release_id__in=failed).order_by("release_id", "sequence")
                   .values(*_SAMPLE_FIELDS)):
        samples[sample["release_id"]].append(sample)
    for rid in failed:
        _place_gate_history(rows[rid], samples[rid], transitions[rid])
    for rid, facts in rows.items():
        facts.events = transitions[rid]
    return list(rows.values())


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def dora_weeks(releases, *, since: datetime, now: datetime) -> list[dict]:
    """One row per service, environment and week from `since` (a Monday) to `now`, oldest first; weeks without
    any release activity are rows of zeros so charts keep their time axis."""
    since = week_start(since)
    buckets: dict[tuple[str, str, datetime], dict] = {}
    pairs: set[tuple[str, str]] = set()

    def bucket(facts: ReleaseFacts, when: datetime) -> dict | None:
        if when < since or when > now:
            return None
        key = (facts.service, facts.environment, week_start(when))
        return buckets.setdefault(key, {"lead": [], "deployments": 0, "changes": 0, "failures": 0, "restore": [],
                                        "unknown": 0})

    for facts in release_facts(releases):
        if facts.live_at:
            b = bucket(facts, facts.live_at)
            if b is not None:
                pairs.add((facts.service, facts.environment))
                b["deployments"] += 1
                if facts.lead_time_s is not None:
                    b["lead"].append(facts.lead_time_s)
        if facts.traffic_at:
            b = bucket(facts, facts.traffic_at)
            if b is not None:
                pairs.add((facts.service, facts.environment))
                b["changes"] += 1
                if facts.failed:
                    b["failures"] += 1
                    if facts.restore_s is None:
                        b["unknown"] += 1
                    else:
                        b["restore"].append(facts.restore_s)
    weeks = []
    week = since
    while week <= now:
        weeks.append(week)
        week += timedelta(weeks=1)
    out = []
    for service, environment in sorted(pairs):
        for week in weeks:
            b = buckets.get((service, environment, week)) or {"lead": [], "deployments": 0, "changes": 0,
                                                              "failures": 0, "restore": [], "unknown": 0}
            out.append({
                "service": service, "environment": environment, "week": week.date().isoformat(),
                "deployments": b["deployments"], "lead_time_median_s": _median(b["lead"]),
                "lead_time_count": len(b["lead"]), "changes": b["changes"], "failures": b["failures"],
                "change_failure_rate": round(b["failures"] / b["changes"], 4) if b["changes"] else None,
                "time_to_restore_median_s": _median(b["restore"]), "restores": len(b["restore"]),
                "restore_unknown": b["unknown"],
            })
    return out


def releases_in_period(releases, *, since: datetime):
    """Releases with any status change since `since` (the rest cannot count in these weeks)."""
    return releases.filter(pk__in=AuditEvent.objects.filter(object_type="release", created_at__gte=week_start(since),
                                                            release__isnull=False).values("release_id"))


def release_timeline(release: Release) -> dict:
    """Breach onset -> verdict -> action -> stable of one release, each with its time and the seconds since the
    onset (or since the first known step), and in words; plus lead time when the release went live."""
    facts = release_facts(Release.objects.filter(pk=release.pk))[0]
    if not facts.failed:  # a canary stopped and still held (paused, in manual review) has a timeline too
        samples = list(SlaSample.objects.filter(release_id=release.pk).order_by("sequence").values(*_SAMPLE_FIELDS))
        _place_gate_history(facts, samples, facts.events)
    summary, uncharted = None, []
    if facts.verdict_at is not None:
        report = (SlaReport.objects.filter(release_id=release.pk, evaluated_at=facts.verdict_at)
                  .values_list("verdict", flat=True).first()) or {}
        summary = report.get("summary")
        uncharted = [f["rule"] for f in report.get("findings", []) if f.get("effect")
                     and f["effect"] == report.get("action") and f.get("rule") not in CHARTED_RULES]
    if facts.onset_at is not None:
        onset_words = "the canary first read worse than stable in the run that ended in the stop"
    elif uncharted:
        verdict_clock = explain.clock(facts.verdict_at.astimezone(dt_timezone.utc))
        onset_words = (f"unknown: the rule that fired ({', '.join(dict.fromkeys(uncharted))}) is not in the chart "
                       f"samples; the verdict came at {verdict_clock} UTC")
    else:
        onset_words = "unknown: no gate sample showed the canary worse than stable"
    stopping = next((t for t in facts.events if facts.action_at and t["created_at"] == facts.action_at
                     and t["to_state"] in STOPPED_STATES), None)
    steps = [
        ("breach onset", facts.onset_at, onset_words),
        ("verdict", facts.verdict_at, summary or ("the gate stopped the canary" if facts.verdict_at else
                                                  "no gate verdict: a person acted")),
        ("action", facts.action_at, (f"{stopping['action']} by {stopping['actor_name']}: "
                                     f"{stopping['from_state']} -> {stopping['to_state']}") if stopping else ""),
        ("stable", facts.failed_at if facts.failed else None,
         f"all traffic back on stable ({facts.failed_to.replace('_', ' ')})" if facts.failed else ""),
    ]
    origin = next((at for _, at, _ in steps if at is not None), None)
    return {
        "failed": facts.failed,
        "steps": [{"step": name, "at": at, "words": words,
                   "after_s": round((at - origin).total_seconds(), 1) if at and origin else None}
                  for name, at, words in steps],
        "time_to_restore_s": facts.restore_s,
        "lead_time_s": facts.lead_time_s,
        "committed_at": facts.committed_at,
        "live_at": facts.live_at,
    }
