"""The demo story's printed log (demo/story.py, `make run`): what a newcomer reads line by line."""
import types

from django.utils import timezone

from demo.story import _Watcher, clip
from deploy.models import Rollout, RolloutStatus
from pipelines.models import Pipeline, Stage, StageStatus
from releases.choices import ReleaseStatus
from releases.services import Actor, audit_record, release_approve
from sla.models import GateRecord

SCAN_REASON = ("python_dependencies unverified: pip-audit skipped 2 of 2 packages (e.g. Dependency not found on PyPI "
               "and could not be audited: prometheus-client (0.26.0)); their vulnerabilities are unknown (an "
               "unverified scan waits for a release_manager override in staging)")


def watch(release):
    lines: list[str] = []
    watcher = _Watcher(types.SimpleNamespace(say=lines.append), release)
    return watcher, lines


def test_clip_cuts_at_a_word_boundary_with_an_ellipsis():
    assert clip("short enough", 40) == "short enough"
    cut = clip(SCAN_REASON, 120)
    assert len(cut) <= 120 and cut.endswith(" …")
    assert SCAN_REASON.startswith(cut.removesuffix(" …")) and SCAN_REASON[len(cut) - 2] == " ", "a whole word"


def test_scan_waiting_line_keeps_the_whole_reason(make_release):
    release = make_release("v1.0.0", status=ReleaseStatus.PENDING)
    watcher, lines = watch(release)
    pipeline = Pipeline.objects.create(release=release)
    Stage.objects.create(pipeline=pipeline, name="scan", position=2, status=StageStatus.WAITING,
                         failure_reason=SCAN_REASON)
    watcher.report(release)
    assert lines == [f"v1.0.0  scan waiting: {SCAN_REASON}"], "not cut mid-word ('(an unveri')"


def test_approvals_are_said_without_a_dangling_arrow(environments, make_release, rm, qa):
    release = make_release("v1.1.0", env="prod")
    watcher, lines = watch(release)
    release_approve(actor=Actor.of(qa), release_id=release.pk, comment="seen the evidence")
    release_approve(actor=Actor.of(rm), release_id=release.pk, comment="seen the evidence")
    watcher.report(release)
    assert lines == ["v1.1.0  qa approved the promotion (prod)", "v1.1.0  rm approved the promotion (prod)"]


def test_a_weight_is_said_only_when_the_event_carries_one(make_release):
    release = make_release("v1.1.0")
    watcher, lines = watch(release)
    gate = Actor.system("sla-gate")
    audit_record(actor=gate, action="release.promote", object_type="release", object_id=release.pk, release=release,
                 from_state="gray", to_state="gray", reason="SLA gate: verified at 5 %",
                 details={"from_weight": 5, "to_weight": 10})
    audit_record(actor=gate, action="sla.healthy", object_type="release", object_id=release.pk, release=release,
                 from_state="gray", to_state="gray", reason="every SLA rule passed for 60 s",
                 details={"sequence": 7})
    audit_record(actor=gate, action="release.pause", object_type="release", object_id=release.pk, release=release,
                 from_state="gray", to_state="paused", reason="SLA gate: answers got worse",
                 details={"from_weight": 10, "to_weight": 10})
    watcher.report(release)
    assert lines == [
        "v1.1.0  sla-gate: release.promote gray -> gray (5 -> 10 %): SLA gate: verified at 5 %",
        "v1.1.0  sla-gate: sla.healthy (still gray): every SLA rule passed for 60 s",  # not "(at 0 %)"
        "v1.1.0  sla-gate: release.pause gray -> paused (at 10 %): SLA gate: answers got worse",
    ]


def test_a_paused_release_gets_the_gates_repeated_verdict_once(make_release):
    release = make_release("v1.2.1")
    release.status, release.gray_weight = ReleaseStatus.PAUSED, 5  # as the gate left it; only the status is read
    watcher, lines = watch(release)
    record = GateRecord.objects.create(release=release, sequence=0, evaluated_weight=5)
    for tick, traces in enumerate([169, 168, 162, 163, 170], 1):  # one gate tick every ~2 s: counts and clock move
        GateRecord.objects.filter(pk=record.pk).update(
            sequence=tick, status="blocked", action="pause",
            last_verdict={"summary": f"v1.2.1's answers got worse over {traces} scored traces: stays paused at "
                                     f"22:03:{40 + tick}"})
        watcher.report(release)
    assert lines == ["v1.2.1  SLA gate at 5 %: blocked (pause) - v1.2.1's answers got worse over 169 scored traces: "
                     "stays paused at 22:03:41"], "the first is kept, the repeats are not"
    GateRecord.objects.filter(pk=record.pk).update(sequence=9, status="verified", action="ready_to_promote",
                                                   last_verdict={"summary": "v1.2.1 passed every rule"})
    watcher.report(release)
    assert lines[1:] == ["v1.2.1  SLA gate at 5 %: verified (ready_to_promote) - v1.2.1 passed every rule"], \
        "a changed decision is news"


def test_a_rollout_finished_before_the_watcher_started_is_not_news(make_release):
    old = make_release("v1.0.0")
    now = timezone.now()
    Rollout.objects.create(release=old, status=RolloutStatus.SUCCEEDED, started_at=now, finished_at=now)
    watcher, lines = watch(old)  # as follow() does after the story, for a version long superseded
    watcher.report(old)
    assert lines == []

    new = make_release("v1.3.0")
    watcher, lines = watch(new)
    Rollout.objects.create(release=new, status=RolloutStatus.SUCCEEDED, started_at=now, finished_at=now)
    watcher.report(new)
    assert lines == ["v1.3.0  rollout succeeded in 0.0 s"]
