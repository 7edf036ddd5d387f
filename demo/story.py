"""The demo story that `make run` plays by itself (`manage.py demo_story`), through the same services people use.

  1. v1.0.0 becomes the stable version: pipeline (prepare, build, scan, push), promote, local deploy, live.
  2. v1.1.0 (healthy) goes through the pipeline and the local deploy as a canary at 5 %; the SLA gate promotes it
     5 -> 10 -> 30 -> 50 -> 100 % as each phase passes, and it goes live (v1.0.0 is stopped).
  3. v1.2.0 (profile "erroring": ~8 % of traces fail) goes through the pipeline and is promoted to 5 %; the SLA
     gate sees its error rate regress against v1.1.0 and pauses the ramp (the design table: an error regression
     pauses); rm reads the gate's sentence and rolls it back in one click: all traffic returns to v1.1.0.
  4. v1.2.1 (profile "worse_answers": a cheaper model) goes through the pipeline and is promoted to 5 %; every
     request still succeeds, as fast as before, but its answers score ~0.70 instead of 0.82 (the demo agent sends
     an eval score with each trace result). HTTP success cannot see it; the LLM quality gate (sla/quality.py) does,
     and pauses the ramp saying so in words. It is left paused for the user to read on its release page.
  5. v1.3.0 (healthy) is built and left ready, so the user can promote it (after rolling v1.2.1 back) in the browser.
  6. prod: v1.0.0, verified in staging, is promoted to prod (same image: build and push skipped); its unverified scan
     waits for rm's override, rm and qa approve, and it goes live there (nothing was live in prod).
  7. prod: v1.1.0 the same way; the SLA gate ramps it 5 -> 10 -> 30 % and waits at the 50 % gray step until qa
     approves; then it ramps on to 100 % and goes live.

People act as the demo users (dev tags and starts releases and sends them on to prod, rm overrides unverified scans
and promotes, rm and qa approve on the evidence); the pipeline, the deploy target and the
SLA gate act as themselves. Idempotent: a release that already exists is picked up where it is (a pipeline still
running is waited for, a failed one is retried once, a paused canary is resumed, a finished step is skipped), so
re-running `make run` on an existing var/ continues the story instead of failing. Every wait is bounded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from deploy.models import Rollout, RolloutStatus
from pipelines.models import Pipeline, StageStatus
from pipelines.services import pipeline_retry_from_failed_stage, scan_override
from releases.choices import ReleaseStatus
from releases.errors import DomainError
from releases.models import AgentService, AuditEvent, Environment, Release
from releases.selectors import approval_evidence, approval_summary, live_release, next_step
from releases.services import (Actor, release_approve, release_create, release_promote, release_promote_next_env,
                               release_resume, release_rollback)
from sla.models import GateRecord

S = ReleaseStatus
# Each demo version's commit is this old when dev tags it, so DORA's lead time (commit -> live) has a start.
COMMIT_AGE = timedelta(minutes=25)
FINAL = {S.ROLLED_BACK, S.REJECTED, S.BLOCKED, S.FAILED, S.CI_FAILED}


@dataclasses.dataclass(frozen=True)
class Step:
    tag: str
    goal: str  # "live", "rolled_back", "paused" (by the SLA gate, left so) or "ready"
    headline: str
    environment: str = ""  # "" is the story's environment (staging); "prod": promoted there from staging

    @property
    def key(self) -> str:
        return f"{self.tag} in {self.environment}" if self.environment else self.tag


STEPS = (
    Step("v1.0.0", "live", "v1.0.0 becomes the stable version: build, scan, push, promote, local deploy"),
    Step("v1.1.0", "live", "v1.1.0 (healthy) ramps 5 -> 10 -> 30 -> 50 -> 100 % as the SLA gate passes each phase"),
    Step("v1.2.0", "rolled_back", "v1.2.0 (faulty: ~8 % of its traces fail) is promoted to 5 %; the SLA gate "
                                  "should pause it, and rm rolls it back"),
    Step("v1.2.1", "paused", "v1.2.1 (a cheaper model: every request still succeeds, but its answers score ~0.70 "
                             "instead of 0.82) is promoted to 5 %; the LLM quality gate should pause it on the eval "
                             "score"),
    Step("v1.3.0", "ready", "v1.3.0 (healthy) is built and left ready for you to promote"),
    Step("v1.0.0", "live", "prod: v1.0.0, verified in staging, goes on to prod with the same image; its unverified "
                           "scan is overridden, rm and qa approve, and it goes live (nothing is live in prod yet)",
         environment="prod"),
    Step("v1.1.0", "live", "prod: v1.1.0 goes on from staging; rm and qa approve; the SLA gate ramps it and waits "
                           "at the 50 % gray step until qa approves, then it goes live", environment="prod"),
)


def clip(text: str, width: int) -> str:
    """`text` whole when it fits in `width` characters, else cut at a word boundary and ended with " …"."""
    return textwrap.shorten(text, width, placeholder=" …")


def commit_of(tag: str) -> str:
    """A stable fake commit per tag, so re-runs bind the same commit (a tag binds exactly one)."""
    return hashlib.sha1(f"rollgate-demo {tag}".encode()).hexdigest()


class StoryStopped(Exception):
    pass


class Story:
    def __init__(self, *, service: str, environment: str, out: Callable[[str], None], url: str = "",
                 step_timeout_s: float = 300.0, poll_s: float = 0.5, stop: threading.Event | None = None):
        self.service, self.environment = service, environment
        self.out, self.url = out, url.rstrip("/")
        self.step_timeout_s, self.poll_s = step_timeout_s, poll_s
        self.stop = stop or threading.Event()
        users = get_user_model().objects
        try:
            self.dev = Actor.of(users.get(username="dev"))
            self.rm = Actor.of(users.get(username="rm"))
            self.qa = Actor.of(users.get(username="qa"))
        except get_user_model().DoesNotExist:
            raise LookupError("the demo users dev, rm and qa do not exist: run `manage.py seed_demo` first") from None
        self.started = time.monotonic()
        self.outcomes: dict[str, str] = {}

    # -- output -----------------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out(f"[{time.monotonic() - self.started:6.1f} s] {text}")

    def _link(self, release: Release) -> str:
        return f"{self.url}/releases/{release.pk}/" if self.url else f"release #{release.pk}"

    # -- reads ------------------------------------------------------------------------------------------------

    def _release(self, tag: str, environment: str = "") -> Release | None:
        return (Release.objects.select_related("service", "environment", "version")
                .filter(service__name=self.service, environment__name=environment or self.environment,
                        version__tag=tag)
                .order_by("-pk").first())

    def _live(self, environment: str = "") -> Release | None:
        service = AgentService.objects.get(name=self.service)
        environment = Environment.objects.get(name=environment or self.environment)
        return live_release(service, environment)

    # -- the story --------------------------------------------------------------------------------------------

    def run(self) -> bool:
        """Play every step; True when each ended where the story expects. Never raises for a step that goes
        wrong (it says what happened and moves on or stops); StoryStopped when asked to stop."""
        self.say(f"the demo story starts: {self.service} in {self.environment}, deploy target local, SLA gate on")
        ok = True
        for number, step in enumerate(STEPS, 1):
            self.say(f"step {number}/{len(STEPS)}: {step.headline}")
            outcome = self._play(step)
            self.outcomes[step.key] = outcome
            if outcome != step.goal:
                ok = False
                if step.goal == "live":
                    self.say(f"{step.tag} ended {outcome}, not live: the later steps need it live, so the story "
                             f"stops here (everything keeps running; see the release page)")
                    break
        return ok

    def current_states(self) -> str:
        """Each step's version as it is now, e.g. "v1.0.0 superseded, v1.1.0 live, ..."."""
        states = []
        for step in STEPS:
            release = self._release(step.tag, step.environment)
            states.append(f"{step.key} {release.get_status_display().lower() if release else 'not created'}")
        return ", ".join(states)

    def _play(self, step: Step) -> str:
        env = step.environment or self.environment
        release = self._release(step.tag, env)
        if release is None:
            if step.tag == "v1.0.0" and self._live(env) is not None:
                live = self._live(env)
                self.say(f"{live.version.tag} is already live in {env}: nothing to do for v1.0.0")
                return "live"
            release = self._create(step.tag) if env == self.environment else self._promote_next_env(step.tag, env)
            if release is None:
                return "not created"
        else:
            self.say(f"{step.tag} exists from an earlier run (release #{release.pk}, {release.status}"
                     f"{f' at {release.gray_weight} %' if release.status in (S.GRAY, S.PAUSED) else ''}): "
                     f"continuing from there")
        deadline = time.monotonic() + self.step_timeout_s
        retried = promoted = resumed = rolled_back = overridden = approved = False
        steps_approved: set[int] = set()
        watcher = _Watcher(self, release)
        while True:
            self._check_stop()
            release.refresh_from_db()
            watcher.report(release)
            status = release.status
            if step.goal == "live" and status in (S.LIVE, S.SUPERSEDED):
                self.say(f"{step.tag} is live: it has 100 % of the traffic" if status == S.LIVE else
                         f"{step.tag} was live and has been replaced by a newer release")
                return "live"
            if step.goal == "ready" and status == S.READY:
                self.say(f"{step.tag} is ready (built, scanned, pushed): promote it yourself on {self._link(release)}")
                return "ready"
            if step.goal == "ready" and status in (S.DEPLOYING, S.GRAY, S.PAUSED, S.LIVE, S.SUPERSEDED):
                self.say(f"{step.tag} was promoted already (it is {status}): nothing left to do")
                return "ready"
            if step.goal == "rolled_back" and status == S.ROLLED_BACK:
                return self._rolled_back(release)
            if step.goal == "paused" and (status == S.PAUSED or status in FINAL) and self._gate_paused(release):
                return self._left_paused(release)
            waiting_scan = self._scan_waiting(release) if status == S.BUILDING and not overridden else ""
            if waiting_scan:
                overridden = True
                self.say(f"{step.tag}: the scan could not clear the image ({clip(waiting_scan, 400)}); it waits for a "
                         f"release manager, and rm overrides it with a written reason")
                self._try(lambda: scan_override(
                    actor=self.rm, release_id=release.pk,
                    reason="demo story: offline machine, no vulnerability data to check against; the image is "
                           "built from the demo's own source"))
            elif status == S.CI_FAILED and not retried:
                retried = True
                self.say(f"{step.tag}: the pipeline failed ({self._pipeline_failure(release)}); retrying it once")
                self._try(lambda: pipeline_retry_from_failed_stage(actor=self.dev, release_id=release.pk))
            elif status in FINAL:
                self.say(f"{step.tag} ended {status}: {release.status_reason or 'see ' + self._link(release)}")
                return status
            elif status == S.READY and step.goal != "ready" and not approved and approval_summary(release).missing:
                approved = True
                self._approve(release, 0)
            elif status == S.READY and step.goal != "ready" and not promoted:
                promoted = True
                self._promote(release)
            elif status == S.GRAY and next_step(release) and next_step(release) not in steps_approved:
                weight = next_step(release)
                if self._gate_waits_for_approval(release, weight, deadline):
                    steps_approved.add(weight)
                    self._approve(release, weight)
            elif status == S.PAUSED and step.goal == "rolled_back" and not rolled_back:
                rolled_back = True
                why = self._gate_pause_reason(release)
                self.say(f"{step.tag} is paused at {release.gray_weight} % by the SLA gate: {why}")
                self.say(f"rm reads that and rolls {step.tag} back in one click")
                self._try(lambda: release_rollback(actor=self.rm, release_id=release.pk,
                                                   comment=f"demo story: the SLA gate paused it ({why})"[:1000]))
            elif status == S.PAUSED and step.goal == "live" and not resumed:
                resumed = True
                self.say(f"{step.tag} is paused at {release.gray_weight} %: rm resumes it")
                self._try(lambda: release_resume(actor=self.rm, release_id=release.pk,
                                                 comment="demo story: resume the ramp"))
            if time.monotonic() > deadline:
                self.say(f"{step.tag}: still {status} after {self.step_timeout_s:g} s; the story stops waiting "
                         f"(see {self._link(release)})")
                return f"timed out ({status})"
            self.stop.wait(self.poll_s)

    def _create(self, tag: str) -> Release | None:
        commit = commit_of(tag)
        committed_at = timezone.now() - COMMIT_AGE
        release = self._try(lambda: release_create(actor=self.dev, service=self.service,
                                                   environment=self.environment, tag=tag, commit=commit,
                                                   committed_at=committed_at))
        if release is not None:
            self.say(f"dev tags {tag} (commit {commit[:8]}) and starts release #{release.pk}; the pipeline runs "
                     f"prepare -> build (podman) -> scan -> push (127.0.0.1:5000)")
        return release

    def _promote_next_env(self, tag: str, environment: str) -> Release | None:
        source = self._release(tag)
        if source is None:
            self.say(f"{tag} never ran in {self.environment}: nothing to promote to {environment}")
            return None
        result = self._try(lambda: release_promote_next_env(actor=self.dev, release_id=source.pk,
                                                            comment="demo story: verified in staging"))
        if result is None:
            return None
        release = result[0]
        self.say(f"dev promotes {tag} from {source.environment.name} (release #{source.pk}, {source.status}) to "
                 f"{release.environment.name}: release #{release.pk}; the image built in {source.environment.name} "
                 f"is reused (read back from the registry, not rebuilt) - {self._link(release)}")
        return release

    def _approve(self, release: Release, step: int) -> None:
        """rm and qa approve what is missing, as people would on the release page, with the evidence they saw."""
        evidence = approval_evidence(release)
        scan = evidence.get("scan", {})
        previous = (evidence.get("sla", {}) or {}).get("previous_environment") or {}
        seen = (f"scan {scan.get('verdict') or scan.get('state')}"
                + (f", overridden by {scan['override']['by']}" if scan.get("override") else "")
                + (f"; {previous['environment']}: {previous['release_status']}" if previous else ""))
        what = f"going to {step} %" if step else "the promotion"
        for role in sorted(approval_summary(release, step=step).missing):
            actor = self.rm if role == "release_manager" else self.qa
            if self._try(lambda: release_approve(actor=actor, release_id=release.pk,
                                                 comment=f"demo story: approved on the evidence ({seen})")):
                self.say(f"{actor.name} ({role}) approves {what} of {release.version.tag} in "
                         f"{release.environment.name}, having seen: {seen}")

    def _gate_waits_for_approval(self, release: Release, weight: int, deadline: float) -> bool:
        """True once the SLA gate has verified the rung and been held by the missing approval (it says so in its
        record), or when the step is half-way to its timeout: then qa gives the approval."""
        record = GateRecord.objects.filter(pk=release.pk).first()
        held = record is not None and "waiting for" in (record.action_taken or "")
        if held:
            self.say(f"{release.version.tag} in {release.environment.name}: the SLA gate verified "
                     f"{release.gray_weight} % but the ramp waits: {record.action_taken.split(': ', 1)[-1]}")
            return True
        return time.monotonic() > deadline - self.step_timeout_s / 2

    def _promote(self, release: Release) -> None:
        live = self._live(release.environment.name)
        where = ("nothing is live yet, so it goes straight to 100 %" if live is None else
                 f"canary next to the stable {live.version.tag}, first phase 5 %")
        self.say(f"rm promotes {release.version.tag}: the local target starts it ({where})")
        self._try(lambda: release_promote(actor=self.rm, release_id=release.pk, comment="demo story"))

    def _gate_pause_reason(self, release: Release) -> str:
        event = (AuditEvent.objects.filter(release=release, action="release.pause", actor_name="sla-gate")
                 .order_by("-pk").first())
        reason = (event.reason if event else "") or "paused by a person"
        return reason.removeprefix("SLA gate: ")

    def _gate_paused(self, release: Release) -> bool:
        return AuditEvent.objects.filter(release=release, action="release.pause", actor_name="sla-gate").exists()

    def _left_paused(self, release: Release) -> str:
        """The quality gate's pause: its sentence, and what the user can do about it."""
        tag = release.version.tag
        if release.status != S.PAUSED:  # a person acted on it since (an earlier run of the story)
            self.say(f"{tag} was paused by the SLA gate and is now {release.status}: "
                     f"{clip(self._gate_pause_reason(release), 300)}")
            return "paused"
        self.say(f"{tag} is paused at {release.gray_weight} % by the SLA gate: {self._gate_pause_reason(release)}")
        self.say(f"  every request of {tag} still succeeds: only the eval scores its traces carry show the "
                 f"regression. It stays paused for you to read on {self._link(release)} (roll it back there)")
        return "paused"

    def _rolled_back(self, release: Release) -> str:
        event = (AuditEvent.objects.filter(release=release, action="release.rollback").order_by("-pk").first())
        who = event.actor_name if event else "someone"
        self.say(f"{release.version.tag} rolled back by {who}: its traffic is cut to 0 %, the stable version has it "
                 f"all")
        if event and event.reason:
            self.say(f"  why: {clip(event.reason, 400)}")
        self.say(f"  SLA reports: {self.url or ''}/sla/reports/?version={release.version.tag}")
        return "rolled_back"

    def _scan_waiting(self, release: Release) -> str:
        """Why the scan waits for an override ("" when it does not)."""
        pipeline = Pipeline.objects.filter(release=release).order_by("-pk").first()
        scan = pipeline.stages.filter(name="scan", status=StageStatus.WAITING).first() if pipeline else None
        return (scan.failure_reason or "waiting for an override") if scan else ""

    def _pipeline_failure(self, release: Release) -> str:
        pipeline = Pipeline.objects.filter(release=release).order_by("-pk").first()
        return (pipeline.failure_reason if pipeline else "") or release.status_reason or "no reason recorded"

    def _try(self, call):
        try:
            return call()
        except DomainError as error:
            self.say(f"  refused: {error.message}")
            return None

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise StoryStopped()


class _Watcher:
    """Says what changed on one release since the last look: pipeline stages, status and weight, the gate."""

    GATE_EVERY_S = 8.0

    def __init__(self, story: Story, release: Release):
        self.story = story
        self.release_id = release.pk
        self.tag = release.version.tag
        self.environment = release.environment.name
        # What is already there when we start looking is not news; only later changes are said (a watcher started
        # after the story, by follow(), must not announce "rollout succeeded" for a version long superseded).
        pipeline = Pipeline.objects.filter(release_id=release.pk).order_by("-pk").first()
        self.stages: dict[str, str] = dict(pipeline.stages.values_list("name", "status")) if pipeline else {}
        rollout_status = Rollout.objects.filter(release_id=release.pk).values_list("status", flat=True).first()
        if rollout_status:
            self.stages["rollout"] = rollout_status
        self.audit_after = AuditEvent.objects.filter(release_id=release.pk).order_by("-pk").values_list(
            "pk", flat=True).first() or 0
        self.gate_sequence = 0
        self.gate_said_at = 0.0
        self.gate_said: tuple = ()  # the last gate decision said: (release status, weight, gate status, action)

    def report(self, release: Release) -> None:
        self._stages()
        self._rollout()
        self._transitions()
        self._gate(release)

    def _stages(self) -> None:
        pipeline = Pipeline.objects.filter(release_id=self.release_id).order_by("-pk").first()
        if pipeline is None:
            return
        for stage in pipeline.stages.order_by("position"):
            if self.stages.get(stage.name) == stage.status or stage.status in (StageStatus.PENDING,):
                continue
            self.stages[stage.name] = stage.status
            took = ""
            if stage.started_at and stage.finished_at:
                took = f" in {(stage.finished_at - stage.started_at).total_seconds():.1f} s"
            detail = ""
            if stage.status in (StageStatus.FAILED, StageStatus.BLOCKED, StageStatus.WAITING) and stage.failure_reason:
                detail = f": {clip(stage.failure_reason, 400)}"
            elif stage.name == "scan" and stage.status == StageStatus.SUCCEEDED:
                verdict = stage.log_lines.filter(message__startswith="scan verdict").order_by("-pk").first()
                if verdict:  # "scan verdict: warn (reason; reason)": the verdict and how many reasons
                    head, _, reasons = verdict.message.partition(" (")
                    count = len([r for r in reasons.split("; ") if r.strip()])
                    detail = f" ({head}{f', {count} unverified or low findings' if count else ''})"
            if stage.status == StageStatus.RUNNING:
                continue  # the finished line says it all; running stages would double the output
            self.story.say(f"{self.tag}  {stage.name} {stage.status}{took}{detail}")

    def _rollout(self) -> None:
        rollout = Rollout.objects.filter(release_id=self.release_id).first()
        if rollout is None or rollout.status in (RolloutStatus.PENDING, RolloutStatus.RUNNING) or \
                self.stages.get("rollout") == rollout.status:
            return
        self.stages["rollout"] = rollout.status
        took = ""
        if rollout.started_at and rollout.finished_at:
            took = f" in {(rollout.finished_at - rollout.started_at).total_seconds():.1f} s"
        failed = rollout.status != RolloutStatus.SUCCEEDED and rollout.reason
        detail = f": {clip(rollout.reason, 300)}" if failed else ""
        self.story.say(f"{self.tag}  rollout {rollout.status}{took}{detail}")

    def _transitions(self) -> None:
        events = list(AuditEvent.objects.filter(release_id=self.release_id, pk__gt=self.audit_after)
                      .exclude(action__startswith="pipeline.").order_by("pk"))
        for event in events:
            self.audit_after = event.pk
            if event.action != "release.create":
                self.story.say(f"{self.tag}  {self._event_line(event)}")

    def _event_line(self, event: AuditEvent) -> str:
        """One audit event in words. Approvals change no state: "qa approved the promotion (prod)". A weight is
        said only when the event carries one (transitions do; sla.healthy or approvals_stale do not)."""
        details = event.details or {}
        if event.action in ("release.approve", "release.reject"):
            step = details.get("step_weight")
            verb = "approved" if event.action == "release.approve" else "rejected"
            return (f"{event.actor_name} {verb} {f'going to {step} %' if step else 'the promotion'} "
                    f"({self.environment})")
        weight_moved = details.get("to_weight") not in (None, details.get("from_weight"))
        if event.to_state and (event.to_state != event.from_state or weight_moved):
            move = f" {event.from_state or '-'} -> {event.to_state}"
            if weight_moved:
                move += f" ({details.get('from_weight', 0)} -> {details['to_weight']} %)"
            elif "to_weight" in details and event.to_state in (S.GRAY, S.PAUSED):
                move += f" (at {details['to_weight']} %)"
        elif event.to_state:  # nothing moved (sla.healthy, approvals_stale)
            move = f" (still {event.to_state}" + (f" at {details['to_weight']} %)" if "to_weight" in details else ")")
        else:
            move = ""
        reason = f": {clip(event.reason, 300)}" if event.reason and event.actor_name == "sla-gate" else ""
        return f"{event.actor_name}: {event.action}{move}{reason}"

    def _gate(self, release: Release) -> None:
        if release.status not in (S.GRAY, S.PAUSED):
            return
        record = GateRecord.objects.filter(pk=self.release_id).first()
        if record is None or record.sequence == self.gate_sequence:
            return
        self.gate_sequence = record.sequence
        now = time.monotonic()
        decision = (release.status, record.evaluated_weight, record.status, record.action)
        if record.action == "hold" and release.status == S.GRAY:
            # Watching a phase: its progress ("needs about 53 more requests"), at most every GATE_EVERY_S.
            due = now - self.gate_said_at >= self.GATE_EVERY_S
        else:
            # Anything else is said once: a paused release gets the same verdict every tick ("stays paused"),
            # only its counts and clock change; it is said again when the release or the gate's decision changes.
            due = decision != self.gate_said
        if due:
            self.story.say(f"{self.tag}  SLA gate at {record.evaluated_weight} %: {record.status}"
                           f" ({record.action}) - {clip(gate_summary(record.last_verdict or {}), 300)}")
            self.gate_said_at, self.gate_said = now, decision


def gate_summary(verdict: dict) -> str:
    """One line for a verdict: the gate's own sentence (older verdicts: the first reason)."""
    if verdict.get("summary"):
        return verdict["summary"]
    reasons = verdict.get("reasons") or [""]
    return reasons[0].split(" [query:")[0]


def follow(story: Story, stop: threading.Event, poll_s: float = 1.0) -> None:
    """After the story: keep saying what happens to the service in the environment (the user's clicks, the gate's
    answers) until stopped."""
    watchers: dict[int, _Watcher] = {}
    while not stop.wait(poll_s):
        releases = (Release.objects.select_related("version", "environment")
                    .filter(service__name=story.service, environment__name=story.environment)
                    .order_by("-pk")[:10])
        for release in releases:
            if release.pk not in watchers:
                watchers[release.pk] = _Watcher(story, release)
                if release.status in (S.PENDING, S.BUILDING):
                    story.say(f"{release.version.tag}: new release #{release.pk} started by "
                              f"{release.started_by.get_username()}")
            watchers[release.pk].report(release)


def closing_words(story: Story) -> list[str]:
    """What the user can do next, with links."""
    lines = ["the story is over; Rollgate, the worker, the SLA gate, the agents and the traffic keep running."]
    ready = story._release("v1.3.0")
    live = story._live()
    url = story.url or "http://127.0.0.1:8000"
    lines.append(f"open {url}/ and log in as rm (password rollgate-demo), then:")
    paused = story._release("v1.2.1")
    if paused is not None and paused.status == S.PAUSED:
        lines.append(f"  - read why the LLM quality gate paused v1.2.1 on {url}/releases/{paused.pk}/ (its requests "
                     f"all succeed; its answers got worse), then roll it back there;")
    if ready is not None and ready.status == S.READY:
        lines.append(f"  - {'then ' if paused is not None and paused.status == S.PAUSED else ''}promote v1.3.0 on "
                     f"{url}/releases/{ready.pk}/ and watch the SLA gate ramp it;")
    offered = ready is not None and ready.status == S.READY
    if live is not None:
        lines.append(f"  - {'or ' if offered else ''}roll back {live.version.tag} (live) on {url}/releases/{live.pk}/ "
                     f"to return to the version before it;")
    prod = story._release("v1.1.0", "prod")
    if prod is not None:
        lines.append(f"  - prod: {prod.version.tag} is {prod.get_status_display().lower()} on {url}/releases/{prod.pk}/ "
                     f"(its approvals, the evidence they were given on, the 50 % gray step)")
    if not offered:
        lines.append("  - (the story was played in an earlier run; `make run DEMO_RESET=1` plays it from the start)")
    lines.append(f"  - SLA reports: {url}/sla/reports/   audit log: {url}/audit/   Ctrl-C stops everything.")
    return lines
