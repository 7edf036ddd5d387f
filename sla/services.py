"""Every write of the SLA app: policy versions, and the ramp controller that turns verdicts into release actions.

The ramp controller (`gate_run`, run by the beat task "sla.evaluate_gray_releases"):

1. `gate_collect`  reads every release in gray or paused with its gate record and the record's sequence N;
2. `gate_evaluate` asks Prometheus about all of them in one batched `sla.gate.evaluate_batch` call, outside any
   database transaction;
3. `gate_apply`    claims each evaluation by compare-and-set on the gate record (sequence N -> N + 1), stores the
   new GateState, the verdict, a chart sample and (when due) the SLA report, commits, and only then acts through
   releases.services (audit rows and live events come from there):

   ============================  ============================================================================
   verdict action                what the controller does
   ============================  ============================================================================
   ready_to_promote              release_promote(expected_weight=<weight evaluated>) as "sla-gate" (gray only)
   pause                         release_gate_pause(expected_weight=...) as "sla-gate" (gray only)
   rollback                      release_rollback as "sla-gate" (gray or paused)
   block_version                 gray/paused -> blocked (release_worker_transition); routing stops serving it
   hold                          nothing; manual_review is recorded, audited once ("sla.manual_review") and shown
   ============================  ============================================================================

A duplicate delivery of the task loses the compare-and-set and does nothing; a later evaluation of a release
that was just promoted sees a new phase (its status_changed_at moved) and only watches, so one evaluation never
causes two steps.  Paused releases keep being evaluated (reports, charts) but are never advanced or paused again;
safety actions (rollback, block_version) still apply to them.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from releases import events, metrics, policy as access
from releases.choices import ReleaseStatus
from releases.errors import DomainError, InvalidInput, NotFound, TransitionNotAllowed
from releases.models import AgentService, Environment, Release
from releases.services import (
    Actor,
    approvals_mark_stale,
    audit_record,
    release_gate_pause,
    release_promote,
    release_resume,
    release_rollback,
    release_worker_transition,
    require_permission,
)
from sla.catalog import Metric
from sla.access import prometheus_client_for
from sla.gate import Evaluation, evaluate_batch
from sla.models import GateRecord, SlaPolicyVersion, SlaReport, SlaSample
from sla.policy import DEFAULT_POLICY, PolicyInvalid, SlaPolicy
from sla.verdict import GateState, GrayRelease, ReleaseReadings

log = logging.getLogger(__name__)
S = ReleaseStatus
GATE_ACTOR = "sla-gate"
NO_BASELINE = "-none-"  # label value no series carries: "no stable-version traffic", the gate only watches


# --- policies ------------------------------------------------------------------------------------------------


def _latest_policy_row(environment: Environment, service: AgentService | None) -> SlaPolicyVersion | None:
    return (SlaPolicyVersion.objects.filter(environment=environment, service=service).order_by("-number").first())


def policy_effective(*, environment: Environment, service: AgentService | None = None) -> SlaPolicy:
    """The environment's latest policy (the defaults when none was saved) with the service's overrides."""
    row = _latest_policy_row(environment, None)
    base = SlaPolicy.from_dict(row.policy) if row else DEFAULT_POLICY
    if service is None:
        return base
    override = _latest_policy_row(environment, service)
    return base.with_overrides(override.policy) if override else base


def policy_version_save(*, actor: Actor, environment: str, service: str = "", policy: dict,
                        comment: str = "") -> SlaPolicyVersion:
    """Save a new version of an environment's policy (service="") or of a service's overrides.

    Raises PolicyInvalid (errors: field -> rule) for a bad policy; an environment change that would make an
    existing service override invalid names that service's field ("<service>.<field>")."""
    require_permission(actor, access.SLA_POLICY_MANAGE)
    env = Environment.objects.filter(name=environment).first()
    if env is None:
        raise NotFound(gettext("no environment named '%(environment)s'") % {"environment": environment[:30]})
    svc = None
    if service:
        svc = AgentService.objects.filter(name=service).first()
        if svc is None:
            raise InvalidInput(gettext("no service named '%(service)s'") % {"service": service[:63]}, field="service")
    if not isinstance(policy, dict):
        raise PolicyInvalid({"policy": f"must be a JSON object, got {type(policy).__name__}"})

    with transaction.atomic():
        Environment.objects.select_for_update().filter(pk=env.pk).get()  # serialise version numbers per env
        before = policy_effective(environment=env, service=svc)
        if svc is None:
            validated = SlaPolicy.from_dict(policy)
            stored = validated.to_dict()
            errors = {}
            for row in _latest_service_overrides(env):
                try:
                    validated.with_overrides(row.policy)
                except PolicyInvalid as exc:
                    errors.update({f"{row.service.name}.{k}": f"override {v}" for k, v in exc.errors.items()})
            if errors:
                raise PolicyInvalid(errors)
        else:
            validated = policy_effective(environment=env).with_overrides(policy)
            full = validated.to_dict()
            stored = {name: full[name] for name in policy}
        number = (SlaPolicyVersion.objects.filter(environment=env, service=svc).aggregate(n=Max("number"))["n"]
                  or 0) + 1
        row = SlaPolicyVersion.objects.create(environment=env, service=svc, number=number, policy=stored,
                                              author=actor.user, author_name=actor.name, comment=comment[:4000])
        old, new = before.to_dict(), validated.to_dict()
        changed = {name: {"from": old[name], "to": new[name]} for name in new if old[name] != new[name]}
        scope = f"{env.name}/{svc.name}" if svc else env.name
        audit_record(actor=actor, action="sla.policy.update", object_type="sla_policy", object_id=row.pk,
                     service=svc, environment=env, to_state=f"v{number}", reason=comment[:1000],
                     details={"scope": scope, "number": number, "changed": changed})
    return row


def _latest_service_overrides(env: Environment) -> list[SlaPolicyVersion]:
    latest = {}
    for row in (SlaPolicyVersion.objects.filter(environment=env, service__isnull=False)
                .select_related("service").order_by("service_id", "-number")):
        latest.setdefault(row.service_id, row)
    return list(latest.values())


# --- the ramp controller -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One release to evaluate, as read before the Prometheus call (the claim is `sequence`)."""

    release_id: int
    status: str
    weight: int
    sequence: int
    gray: GrayRelease
    state: GateState
    policy: SlaPolicy
    was_status: str  # the gate record's status before this evaluation
    healthy: bool


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(dt_timezone.utc)


def _stable_releases(releases: list[Release]) -> dict[tuple[int, int], Release]:
    """The live release of every (service, environment) of `releases`, in one query."""
    pairs = {(r.service_id, r.environment_id) for r in releases}
    if not pairs:
        return {}
    live = (Release.objects.filter(status=S.LIVE, service_id__in={p[0] for p in pairs},
                                   environment_id__in={p[1] for p in pairs})
            .select_related("version").order_by("-status_changed_at", "-pk"))
    out: dict[tuple[int, int], Release] = {}
    for release in live:
        out.setdefault((release.service_id, release.environment_id), release)
    return out


class _TickPolicies:
    """Every policy one tick needs, from two queries: each environment's latest policy and the latest overrides of
    the services that have any. Effective policies are then computed once per (environment, service)."""

    def __init__(self, environment_ids: set[int]):
        self.base_rows: dict[int, SlaPolicyVersion] = {}
        for row in (SlaPolicyVersion.objects.filter(environment_id__in=environment_ids, service__isnull=True)
                    .order_by("environment_id", "-number")):
            self.base_rows.setdefault(row.environment_id, row)
        self.override_rows: dict[tuple[int, int], SlaPolicyVersion] = {}
        for row in (SlaPolicyVersion.objects.filter(environment_id__in=environment_ids, service__isnull=False)
                    .order_by("environment_id", "service_id", "-number")):
            self.override_rows.setdefault((row.environment_id, row.service_id), row)
        self.bases: dict[int, SlaPolicy] = {}
        self.effective: dict[tuple[int, int], SlaPolicy] = {}

    def base(self, environment_id: int) -> SlaPolicy:
        if environment_id not in self.bases:
            row = self.base_rows.get(environment_id)
            self.bases[environment_id] = SlaPolicy.from_dict(row.policy) if row else DEFAULT_POLICY
        return self.bases[environment_id]

    def for_release(self, release: Release) -> SlaPolicy:
        key = (release.environment_id, release.service_id)
        if key not in self.effective:
            base = self.base(release.environment_id)
            override = self.override_rows.get(key)
            try:
                self.effective[key] = base.with_overrides(override.policy) if override else base
            except PolicyInvalid:
                log.warning("SLA policy of %s/%s is invalid; using the environment's", release.environment.name,
                            release.service.name)
                self.effective[key] = base
        return self.effective[key]


def gate_collect() -> list[Candidate]:
    """Every release in gray or paused, with its gate state (a new record for a release seen the first time).

    The baseline is the stable release serving the environment NOW (its live release; during a blue-green
    cut-over that is still the colour being replaced), never the `previous_release` recorded at creation: a
    release created before its predecessor went live is judged against whatever is stable when it ramps.

    A fixed number of queries whatever the number of releases: the releases, their gate records (missing ones
    created in one statement), the policies, and the live releases of their services."""
    releases = list(Release.objects.filter(status__in=[S.GRAY, S.PAUSED])
                    .select_related("service", "environment", "version")
                    .order_by("pk"))
    if not releases:
        return []
    ids = [release.pk for release in releases]
    records = GateRecord.objects.in_bulk(ids)
    missing = [pk for pk in ids if pk not in records]
    if missing:
        GateRecord.objects.bulk_create([GateRecord(release_id=pk) for pk in missing], ignore_conflicts=True)
        records.update(GateRecord.objects.in_bulk(missing))
    policies = _TickPolicies({release.environment_id for release in releases})
    stable = _stable_releases(releases)
    out = []
    for release in releases:
        record = records[release.pk]
        phase_start = _as_utc(release.status_changed_at)
        if record.state:
            state = GateState.from_dict(record.state)
            if state.phase_started_at != phase_start:  # promoted, paused or resumed since: a new phase
                state = state.entering_phase(phase_start)
        else:
            state = GateState(deployed_at=phase_start, phase_started_at=phase_start)
        live = stable.get((release.service_id, release.environment_id))
        baseline = live.version.tag if live is not None else NO_BASELINE
        gray = GrayRelease(service=release.service.name, env=release.environment.name, version=release.version.tag,
                           baseline_version=baseline, agent_group=f"{release.service.name}-{release.environment.name}",
                           release_id=release.pk, paused=release.status == S.PAUSED)
        out.append(Candidate(release_id=release.pk, status=release.status, weight=release.gray_weight,
                             sequence=record.sequence, gray=gray, state=state, policy=policies.for_release(release),
                             was_status=record.status, healthy=record.healthy_at is not None))
    return out


def gate_evaluate(candidates: list[Candidate], *, at: datetime | None = None,
                  prometheus_url: str | None = None) -> list[Evaluation]:
    """Query Prometheus once for every candidate. Network I/O: never call inside a transaction."""
    if not candidates:
        return []
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("gate_evaluate queries Prometheus: call it outside any database transaction")
    by_id = {c.release_id: c for c in candidates}
    at = at or datetime.now(dt_timezone.utc)  # every environment's batch judges the same instant
    # One Prometheus per environment (sla/access.py: URL, TLS, credentials); one batch per environment.
    by_environment: dict[str, list[int]] = {}
    for index, candidate in enumerate(candidates):
        by_environment.setdefault(candidate.gray.env, []).append(index)
    out: list[Evaluation | None] = [None] * len(candidates)
    for environment, indexes in by_environment.items():
        prom = prometheus_client_for(environment, url=prometheus_url,
                                     timeout_s=settings.SLA_PROMETHEUS_TIMEOUT_SECONDS)
        started = time.monotonic()
        try:
            evaluations = evaluate_batch(prom, lambda gray: by_id[gray.release_id].policy,
                                         [(candidates[i].gray, candidates[i].state) for i in indexes], at=at)
        finally:
            prom.close()
        # Rollgate's own /metrics: how long each environment's batch took, and how many could not read Prometheus.
        metrics.observe("gate_evaluation_seconds", time.monotonic() - started, environment=environment)
        failed = sum(1 for evaluation in evaluations if evaluation.canary.error)
        if failed:
            metrics.increment("gate_evaluation_errors", failed, environment=environment)
        for index, evaluation in zip(indexes, evaluations):
            out[index] = evaluation
    return out


def _json_safe(value):
    """JSON (and PostgreSQL jsonb) has no Infinity/NaN: the +Inf latency bucket, an infinite test statistic."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _ratio(readings: ReleaseReadings) -> float | None:
    total = readings.value(Metric.REQUEST_COUNT)
    failed = readings.value(Metric.FAILED_REQUEST_COUNT)
    return failed / total if total and failed is not None else None


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def _readings_json(readings: ReleaseReadings) -> dict:
    if readings.error:
        return {"error": readings.error}
    return _json_safe({
        "metrics": {metric.value: reading.to_dict() for metric, reading in readings.metrics.items()},
        "latency_buckets": [list(b) for b in readings.latency_buckets],
        "latency_buckets_query": readings.latency_buckets_query,
        "counter_totals_query": readings.counter_totals_query,
    })


@dataclass(frozen=True)
class Applied:
    release_id: int
    sequence: int
    status: str
    action: str
    taken: str  # what the controller did, in words ("" when it lost the claim)
    claimed: bool


def _sample(candidate: Candidate, evaluation: Evaluation) -> SlaSample:
    """The chart row of one evaluation (canary and baseline numbers side by side)."""
    verdict, canary, baseline = evaluation.verdict, evaluation.canary, evaluation.baseline
    return SlaSample(
        release_id=candidate.release_id, sequence=candidate.sequence + 1, evaluated_at=verdict.at,
        gray_weight=candidate.weight, status=verdict.status, action=verdict.action,
        canary_requests=canary.value(Metric.REQUEST_COUNT), baseline_requests=baseline.value(Metric.REQUEST_COUNT),
        canary_success_rate=canary.value(Metric.TRACE_SUCCESS_RATE),
        baseline_success_rate=baseline.value(Metric.TRACE_SUCCESS_RATE),
        canary_p95_ms=_ms(canary.value(Metric.TRACE_LATENCY_P95)),
        baseline_p95_ms=_ms(baseline.value(Metric.TRACE_LATENCY_P95)),
        canary_error_ratio=_ratio(canary), baseline_error_ratio=_ratio(baseline),
        canary_callback_fail_rate=canary.value(Metric.CALLBACK_FAILURE_RATE),
        baseline_callback_fail_rate=baseline.value(Metric.CALLBACK_FAILURE_RATE),
        canary_eval_score=canary.value(Metric.EVAL_SCORE_MEAN),
        baseline_eval_score=baseline.value(Metric.EVAL_SCORE_MEAN),
    )


def _quiet(candidate: Candidate, evaluation: Evaluation) -> bool:
    """A verdict that only needs storing: hold, no report due, no audit row, nothing to act on. Most verdicts of
    most ticks are quiet; they are stored in batches (gate_apply_quiet) instead of a transaction each."""
    verdict = evaluation.verdict
    return (verdict.action == "hold" and not verdict.snapshot_due
            and not (verdict.next_state.manual_review and not candidate.state.manual_review)
            and not (verdict.healthy and not candidate.healthy))


QUIET_BATCH = 500


QUIET_BATCH_BYTES = 32 * 1024 * 1024  # a stored verdict quotes its PromQL, which grows with the fleet


def _quiet_batches(pairs):
    """(pairs, VALUES rows, parameters) of at most QUIET_BATCH verdicts and about QUIET_BATCH_BYTES of JSON: one
    statement must stay far below PostgreSQL's 1 GB message limit."""
    batch, rows, params, size = [], [], [], 0
    for candidate, evaluation in pairs:
        verdict = evaluation.verdict
        state_json = json.dumps(_json_safe(verdict.next_state.to_dict()))
        verdict_json = json.dumps(_json_safe(verdict.to_dict()))
        if batch and (len(batch) >= QUIET_BATCH or size + len(verdict_json) > QUIET_BATCH_BYTES):
            yield batch, rows, params
            batch, rows, params, size = [], [], [], 0
        batch.append((candidate, evaluation))
        size += len(verdict_json) + len(state_json)
        rows.append("(%s::bigint, %s::int, %s::jsonb, %s::int, %s, %s, %s, %s::jsonb, %s, %s::int, %s::timestamptz)")
        params += [candidate.release_id, candidate.sequence, state_json, candidate.weight, verdict.status,
                   verdict.action, verdict.outcome.value, verdict_json,
                   next((f.text for f in verdict.findings if f.rule == "prometheus_available"), ""),
                   verdict.next_state.consecutive_prometheus_errors, verdict.at]
    if batch:
        yield batch, rows, params


def gate_apply_quiet(pairs: list[tuple[Candidate, Evaluation]]) -> list[Applied]:
    """Store quiet verdicts QUIET_BATCH at a time: one compare-and-set UPDATE claims every record still at its
    sequence (the others were claimed by a duplicate delivery: left alone, as in gate_apply), one INSERT writes
    their chart samples, one transaction; the live events go out after commit."""
    applied: list[Applied] = []
    for batch, rows, params in _quiet_batches(pairs):
        table = GateRecord._meta.db_table
        sql = (f"UPDATE {table} AS g SET sequence = v.seq + 1, state = v.state, evaluated_weight = v.weight, "
               "status = v.status, action = v.action, outcome = v.outcome, last_verdict = v.verdict, "
               "last_error = v.error, consecutive_errors = v.errors, action_taken = '', evaluated_at = v.at, "
               "updated_at = %s "
               f"FROM (VALUES {', '.join(rows)}) AS v(id, seq, state, weight, status, action, outcome, verdict, "
               "error, errors, at) WHERE g.release_id = v.id AND g.sequence = v.seq RETURNING g.release_id")
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Lock order: the releases before their gate records (the sample rows below reference them;
                # a person's acknowledgement locks a release, then its gate record).
                cursor.execute(f"SELECT id FROM {Release._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",
                               [[c.release_id for c, _ in batch]])
                cursor.execute(sql, [timezone.now(), *params])
                claimed = {row[0] for row in cursor.fetchall()}
            SlaSample.objects.bulk_create([_sample(c, e) for c, e in batch if c.release_id in claimed])
            verdicts = [(c.release_id, c.sequence + 1, e.verdict) for c, e in batch if c.release_id in claimed]
            transaction.on_commit(lambda verdicts=verdicts: events.send_events([
                ([events.release_group(rid)], "sla.verdict",
                 {"release_id": rid, "sequence": sequence, "status": v.status, "action": v.action,
                  "outcome": v.outcome.value, "healthy": v.healthy})
                for rid, sequence, v in verdicts]))
        for candidate, evaluation in batch:
            won = candidate.release_id in claimed
            applied.append(Applied(candidate.release_id, candidate.sequence + (1 if won else 0),
                                   evaluation.verdict.status, evaluation.verdict.action, "", claimed=won))
    return applied


def gate_apply(candidate: Candidate, evaluation: Evaluation) -> Applied:
    """Claim the evaluation, store it, commit, then act once. Returns what happened."""
    verdict = evaluation.verdict
    seq = candidate.sequence
    at = verdict.at
    error = next((f.text for f in verdict.findings if f.rule == "prometheus_available"), "")
    verdict_json = _json_safe(verdict.to_dict())
    with transaction.atomic():
        # Lock order (as every interactive path): service, then release, then the gate record.  The rows
        # written below reference service and release, whose foreign-key checks would otherwise take their
        # locks after the gate record's, the reverse order.
        if not _lock_release_rows(candidate.release_id):
            return Applied(candidate.release_id, seq, verdict.status, verdict.action, "", claimed=False)
        claimed = GateRecord.objects.filter(pk=candidate.release_id, sequence=seq).update(
            sequence=seq + 1, state=_json_safe(verdict.next_state.to_dict()), evaluated_weight=candidate.weight,
            status=verdict.status, action=verdict.action, outcome=verdict.outcome.value,
            last_verdict=verdict_json, last_error=error,
            consecutive_errors=verdict.next_state.consecutive_prometheus_errors, action_taken="",
            evaluated_at=at, updated_at=timezone.now(),
        )
        if not claimed:
            return Applied(candidate.release_id, seq, verdict.status, verdict.action, "", claimed=False)
        canary, baseline = evaluation.canary, evaluation.baseline
        manual_review = bool(verdict.next_state.manual_review and not candidate.state.manual_review)
        newly_healthy = verdict.healthy and not candidate.healthy
        # The release row is read only when a report or an audit row needs it: most ticks write the sample alone.
        release = (Release.objects.select_related("service", "environment").get(pk=candidate.release_id)
                   if verdict.snapshot_due or manual_review or newly_healthy else None)
        _sample(candidate, evaluation).save()
        if verdict.snapshot_due:
            report = verdict.report
            SlaReport.objects.create(
                release=release, service=release.service, environment=release.environment, sequence=seq + 1,
                gray_weight=candidate.weight, version=report["version"], start_ts=_as_utc(candidate.state.deployed_at),
                agent_group=report["agent_group"], success_rate=report["success_rate"],
                p95_latency_ms=report["p95_latency_ms"], error_trace_ratio=report["error_trace_ratio"],
                callback_fail_rate=report["callback_fail_rate"], eval_score=canary.value(Metric.EVAL_SCORE_MEAN),
                status=verdict.status, action=verdict.action,
                outcome=verdict.outcome.value, evaluated_at=at, verdict=verdict_json,
                readings={"canary": _readings_json(canary), "baseline": _readings_json(baseline)},
            )
        gate = Actor.system(GATE_ACTOR)
        if manual_review:
            audit_record(actor=gate, action="sla.manual_review", object_type="release", object_id=release.pk,
                         release=release, from_state=release.status, to_state=release.status,
                         reason="SLA gate needs an operator: " + verdict.summary[:900],
                         details={"sequence": seq + 1, "reasons": verdict.reasons[:10]})
        if newly_healthy:
            if GateRecord.objects.filter(pk=release.pk, healthy_at__isnull=True).update(healthy_at=at):
                audit_record(actor=gate, action="sla.healthy", object_type="release", object_id=release.pk,
                             release=release, from_state=release.status, to_state=release.status,
                             reason=f"every SLA rule passed for {candidate.policy.healthy_after_s:g} s: "
                                    f"allowed into the production main path",
                             details={"sequence": seq + 1})
        events.send_event_on_commit(
            [events.release_group(candidate.release_id)], "sla.verdict",
            {"release_id": candidate.release_id, "sequence": seq + 1, "status": verdict.status,
             "action": verdict.action, "outcome": verdict.outcome.value, "healthy": verdict.healthy},
        )

    if verdict.snapshot_due and verdict.action in BLOCKING_SNAPSHOT_ACTIONS:
        # Approvals of this version further down the path were given on better evidence: they go stale.
        approvals_mark_stale(service_id=release.service_id, tag=release.version.tag, actor_name=GATE_ACTOR,
                             after_position=release.environment.position,
                             reason=f"a new SLA snapshot of {release.version.tag} in {release.environment.name} "
                                    f"blocks ({verdict.action}): {verdict.summary[:300]}")
    taken = _act(candidate, verdict)  # committed: a failure to act below never loses the stored verdict
    if taken:
        GateRecord.objects.filter(pk=candidate.release_id, sequence=seq + 1).update(action_taken=taken[:300])
    return Applied(candidate.release_id, seq + 1, verdict.status, verdict.action, taken, claimed=True)


# A snapshot that pauses, rolls back or blocks makes approvals of the version in later environments stale.
BLOCKING_SNAPSHOT_ACTIONS = frozenset({"pause", "rollback", "block_version"})


def _lock_release_rows(release_id: int, *, no_key: bool = True) -> bool:
    """Lock the release's service row, then the release row, FOR NO KEY UPDATE like releases.services.release_lock
    (foreign-key checks of other writers still pass; the lock order is written down there).  no_key=False takes
    FOR UPDATE.  Call inside transaction.atomic(); False when the release is gone."""
    service_id = Release.objects.filter(pk=release_id).values_list("service_id", flat=True).first()
    if service_id is None:
        return False
    list(AgentService.objects.select_for_update(no_key=no_key).filter(pk=service_id).values_list("pk", flat=True))
    return bool(list(Release.objects.select_for_update(no_key=no_key).filter(pk=release_id)
                     .values_list("pk", flat=True)))


def _act(candidate: Candidate, verdict) -> str:
    """Carry out the verdict's action once, through releases.services. Returns what was done, in words."""
    gate = Actor.system(GATE_ACTOR)
    why = verdict.summary[:900]
    rid, weight = candidate.release_id, candidate.weight
    try:
        if verdict.action == "ready_to_promote":
            if candidate.status != S.GRAY:
                return "paused: verified, but a paused release is not advanced"
            release = release_promote(actor=gate, release_id=rid, expected_weight=weight,
                                      comment=f"SLA gate: verified at {weight} % (evaluation {candidate.sequence + 1})")
            return f"promoted {weight} -> {release.gray_weight} %"
        if verdict.action == "pause":
            if candidate.status != S.GRAY:
                return "already paused"
            done = release_gate_pause(release_id=rid, expected_weight=weight, reason=f"SLA gate: {why}")
            return "paused" if done else "not paused: the release moved since the evaluation"
        if verdict.action == "rollback":
            # canary_only: the verdict was about a canary; a release promoted to live meanwhile is left alone.
            release_rollback(actor=gate, release_id=rid, comment=f"SLA gate: {why}", canary_only=True)
            return "rolled back: canary traffic cut"
        if verdict.action == "block_version":
            done = release_worker_transition(release_id=rid, from_statuses={S.GRAY, S.PAUSED}, to_status=S.BLOCKED,
                                             actor_name=GATE_ACTOR, action="sla.block_version",
                                             reason=f"SLA gate blocked {candidate.gray.version} in routing: {why}",
                                             gray_weight=0)
            return "blocked in routing" if done else "not blocked: the release moved since the evaluation"
    except DomainError as error:
        log.info("SLA gate could not %s release %s: %s", verdict.action, rid, error.message)
        return f"{verdict.action} refused: {error.message}"
    return ""


ACKNOWLEDGE_DECISIONS = ("resume", "rollback")


def gate_acknowledge(*, actor: Actor, release_id: int, decision: str, comment: str) -> GateRecord:
    """A person settles the gate's manual review: "resume" (the gate judges again; a paused release resumes)
    or "rollback" (canary traffic cut).  A comment is required; audited.  The gate never clears it itself."""
    if decision not in ACKNOWLEDGE_DECISIONS:
        raise InvalidInput(gettext("decision must be one of %(decisions)s") % {
                               "decisions": ', '.join(ACKNOWLEDGE_DECISIONS)}, field="decision")
    require_permission(actor, access.RELEASE_RESUME if decision == "resume" else access.RELEASE_ROLLBACK)
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput(gettext("a comment is required: say why the manual review is settled"), field="comment")
    limit = settings.ROLLGATE_MAX_COMMENT_LENGTH
    if len(comment) > limit:
        raise InvalidInput(gettext("a comment has at most %(limit)s characters, got %(comment)s") % {
                               "limit": limit, "comment": len(comment)}, field="comment")
    with transaction.atomic():
        if not _lock_release_rows(release_id):  # NO KEY UPDATE, the same mode as the release services it calls
            raise NotFound(gettext("no release with id %(release_id)s") % {"release_id": release_id})
        record = GateRecord.objects.select_for_update().filter(pk=release_id).first()
        state = GateState.from_dict(record.state) if record is not None and record.state else None
        if state is None or not state.manual_review:
            raise TransitionNotAllowed(gettext("release #%(release_id)s has no manual review waiting for "
                                               "a person") % {"release_id": release_id})
        release = Release.objects.select_related("service", "environment", "version").get(pk=release_id)
        review = state.manual_review
        # Bump the sequence: an evaluation read before this acknowledgement loses its claim.
        record.state = _json_safe(state.acknowledged().to_dict())
        record.sequence += 1
        record.status, record.action = "watching", "hold"
        record.action_taken = f"manual review settled by {actor.name}: {decision}"[:300]
        # The stored sentence said "manual review needed"; until the next evaluation it says who settled it.
        settled = (f"{release.version.tag}: manual review settled by {actor.name} at "
                   f"{timezone.now().strftime('%H:%M:%S')} UTC ({decision}): {comment}")
        record.last_verdict = {**(record.last_verdict or {}), "summary": settled[:1000], "status": "watching",
                               "action": "hold"}
        record.save(update_fields=["state", "sequence", "status", "action", "action_taken", "last_verdict",
                                   "updated_at"])
        audit_record(actor=actor, action="sla.manual_review.acknowledge", object_type="release", object_id=release.pk,
                     release=release, from_state=release.status, to_state=release.status, reason=comment,
                     details={"decision": decision, "review_since": review.get("since"),
                              "review_reason": review.get("reason", "")[:500]})
        if decision == "rollback":
            release_rollback(actor=actor, release_id=release_id, comment=f"manual review: {comment}",
                             canary_only=True)
        elif release.status == S.PAUSED:
            release_resume(actor=actor, release_id=release_id, comment=f"manual review: {comment}")
        events.send_event_on_commit([events.release_group(release.pk)], "sla.verdict",
                                    {"release_id": release.pk, "sequence": record.sequence, "status": record.status,
                                     "action": record.action, "outcome": record.outcome, "healthy": record.healthy})
    return record


@dataclass(frozen=True)
class RunSummary:
    evaluated: int
    applied: list[Applied]

    def as_dict(self) -> dict:
        return {"evaluated": self.evaluated,
                "applied": [{"release_id": a.release_id, "status": a.status, "action": a.action, "taken": a.taken,
                             "claimed": a.claimed} for a in self.applied]}


def gate_run(*, at: datetime | None = None, prometheus_url: str | None = None) -> RunSummary:
    """One pass of the ramp controller over every gray and paused release."""
    candidates = gate_collect()
    evaluations = gate_evaluate(candidates, at=at, prometheus_url=prometheus_url)
    pairs = list(zip(candidates, evaluations))
    quiet = {a.release_id: a for a in gate_apply_quiet([(c, e) for c, e in pairs if _quiet(c, e)])}
    applied = [quiet.get(c.release_id) or gate_apply(c, e) for c, e in pairs]
    return RunSummary(evaluated=len(candidates), applied=applied)


def history_prune(*, older_than_days: float | None = None) -> int:
    """Delete chart samples older than SLA_HISTORY_RETENTION_DAYS (reports are kept)."""
    days = settings.SLA_HISTORY_RETENTION_DAYS if older_than_days is None else older_than_days
    deleted, _ = SlaSample.objects.filter(evaluated_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
