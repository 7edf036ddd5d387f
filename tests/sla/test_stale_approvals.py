"""A new SLA snapshot that blocks makes the approvals of the same version further down the path stale (issue 15):
the canary in staging is paused by the gate, so prod's approvals of that version, given on better evidence, no
longer count."""
import pytest

from releases.choices import ReleaseStatus
from releases.models import Approval, AuditEvent
from releases.selectors import approval_summary
from releases.services import Actor, release_approve, release_create, release_worker_transition
from sla import services
from sla.models import SlaReport

from .conftest import RAMP_CANARY

pytestmark = pytest.mark.django_db(transaction=True)
S = ReleaseStatus


def test_a_pausing_snapshot_in_staging_makes_prod_approvals_of_that_version_stale(canary_of, history_end, dev, rm,
                                                                                  qa):
    canary = canary_of("ramp-low-success")
    prod = release_create(actor=Actor.of(dev), service=canary.service.name, environment="prod", tag=RAMP_CANARY,
                          commit=canary.version.commit_sha)
    assert release_worker_transition(release_id=prod.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                     actor_name="pipeline", action="pipeline.succeeded")
    release_approve(actor=Actor.of(rm), release_id=prod.pk)
    given = release_approve(actor=Actor.of(qa), release_id=prod.pk)
    # What qa saw: staging's canary, not yet judged.
    assert given.evidence["sla"]["previous_environment"]["environment"] == "staging"
    assert given.evidence["sla"]["previous_environment"]["snapshot"] is None
    assert approval_summary(prod).missing == {}

    services.gate_run(at=history_end)
    canary.refresh_from_db()
    assert canary.status == S.PAUSED
    snapshot = SlaReport.objects.get(release=canary)
    assert snapshot.action == "pause"
    assert approval_summary(prod).missing == {"qa": 1, "release_manager": 1}
    stale = Approval.objects.get(release=prod, user=qa)
    assert stale.stale and "a new SLA snapshot of v1.1.0 in staging blocks (pause)" in stale.stale_reason
    assert AuditEvent.objects.filter(release=prod, action="release.approvals_stale", actor_name="sla-gate").exists()
    # Given again, the approval now carries the blocking snapshot as its evidence.
    again = release_approve(actor=Actor.of(qa), release_id=prod.pk, comment="seen the pause; staging fix coming")
    assert again.evidence["sla"]["previous_environment"]["snapshot"]["action"] == "pause"
