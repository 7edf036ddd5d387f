"""Snapshot cadence: first within the first-snapshot deadline, then once per evaluation interval."""

from datetime import datetime, timedelta, timezone

from sla.policy import SlaPolicy
from sla.verdict import GateState, snapshot_is_due

T0 = datetime(2025, 5, 2, 23, 15, tzinfo=timezone.utc)


def test_first_snapshot_within_thirty_minutes_then_every_interval():
    policy = SlaPolicy(evaluation_interval_s=3600, first_snapshot_within_s=1800)
    fresh = GateState(deployed_at=T0, phase_started_at=T0)
    assert not snapshot_is_due(policy, fresh, T0 + timedelta(minutes=29))
    assert snapshot_is_due(policy, fresh, T0 + timedelta(minutes=30))
    taken = GateState(deployed_at=T0, phase_started_at=T0, last_snapshot_at=T0 + timedelta(minutes=30))
    assert not snapshot_is_due(policy, taken, T0 + timedelta(minutes=89))
    assert snapshot_is_due(policy, taken, T0 + timedelta(minutes=90))


def test_default_interval_is_shorter_than_the_first_deadline():
    fresh = GateState(deployed_at=T0, phase_started_at=T0)
    assert snapshot_is_due(SlaPolicy(), fresh, T0 + timedelta(minutes=10))


def test_state_round_trips_as_json():
    state = GateState(deployed_at=T0, phase_started_at=T0 + timedelta(minutes=5), consecutive_prometheus_errors=2,
                      passing_since=T0 + timedelta(minutes=6))
    assert GateState.from_dict(state.to_dict()) == state
