"""The verdict's vocabulary: effects, findings, what the gate reads and what it remembers between evaluations.

Pure data (no Django, no I/O).  sla.rules turns readings into findings; sla.verdict decides between them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from sla import explain
from sla.catalog import Metric, ReleaseSelector
from sla.prometheus import Reading
from sla.stats import CounterTotals, CusumState, FloorCusumState, LatencyCusumState


class Effect(Enum):
    # value: (severity, status, action)
    ROLLBACK = (50, "rollbacked", "rollback")
    BLOCK_VERSION = (40, "blocked", "block_version")
    PAUSE = (30, "blocked", "pause")
    MANUAL_REVIEW = (20, "manual_review", "hold")
    WATCH = (10, "watching", "hold")
    PROMOTE = (0, "verified", "ready_to_promote")

    @property
    def severity(self) -> int:
        return self.value[0]

    @property
    def status(self) -> str:
        return self.value[1]

    @property
    def action(self) -> str:
        return self.value[2]


class Outcome(str, Enum):
    EVALUATED = "EVALUATED"
    LOW_TRAFFIC = "LOW_TRAFFIC"
    NODATA = "NODATA"
    PROMETHEUS_ERROR = "PROMETHEUS_ERROR"


@dataclass(frozen=True)
class GrayRelease:
    service: str
    env: str
    version: str
    baseline_version: str  # the stable release serving the environment when the gate evaluates
    agent_group: str | None = None
    release_id: int | str | None = None
    paused: bool = False  # the release's ramp is paused (by a person or the gate)

    @property
    def canary(self) -> ReleaseSelector:
        return ReleaseSelector(self.service, self.env, self.version)

    @property
    def baseline(self) -> ReleaseSelector:
        return ReleaseSelector(self.service, self.env, self.baseline_version)


@dataclass(frozen=True)
class ReleaseReadings:
    """What Prometheus said about one version at one evaluation time."""

    at: datetime
    metrics: dict = field(default_factory=dict)  # Metric -> Reading (each with this release's own query)
    latency_buckets: tuple = ()  # ((le, count), ...) cumulative, in the window
    latency_buckets_query: str | None = None
    counter_totals: CounterTotals | None = None  # raw counters for the sequential tests
    counter_totals_query: str | None = None
    error: str | None = None  # Prometheus trouble: no readings at all
    latency_bucket_totals: tuple | None = None  # ((le, count), ...) raw cumulative counters (no window)

    def reading(self, metric: Metric) -> Reading | None:
        return self.metrics.get(metric)

    def value(self, metric: Metric) -> float | None:
        reading = self.metrics.get(metric)
        return None if reading is None else reading.value

    def query(self, metric: Metric) -> str | None:
        reading = self.metrics.get(metric)
        return None if reading is None else reading.query

    @property
    def has_traffic_series(self) -> bool:
        return self.reading(Metric.REQUEST_COUNT) is not None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _totals(data) -> CounterTotals | None:
    return None if not data else CounterTotals(float(data["requests"]), float(data["failures"]))


@dataclass(frozen=True)
class GateState:
    """What the gate remembers between evaluations of one release (persisted by the controller)."""

    deployed_at: datetime
    phase_started_at: datetime
    consecutive_prometheus_errors: int = 0
    passing_since: datetime | None = None
    last_snapshot_at: datetime | None = None
    cusum: CusumState = field(default_factory=CusumState)
    latency_cusum: LatencyCusumState = field(default_factory=LatencyCusumState)
    floor_cusum: FloorCusumState = field(default_factory=FloorCusumState)
    # The canary's raw counters at the first evaluation of the phase: the sample "since the phase began".
    phase_mark: CounterTotals | None = None
    phase_mark_at: datetime | None = None
    # The canary's raw failure counter when the gate first saw the release paused (block_version escalation).
    pause_mark_failures: float | None = None
    # Sticky manual review: {"since": iso, "reason": words}; only a person's acknowledgement clears it.
    manual_review: dict | None = None
    # After Prometheus trouble the data has a hole: nothing promotes before a full window from here.
    fresh_from: datetime | None = None
    prometheus_outage: bool = False
    # The stable version the sequential tests compared with: a new stable restarts them (its counters differ).
    baseline_version: str | None = None

    def to_dict(self) -> dict:
        mark = self.phase_mark
        return {
            "deployed_at": _iso(self.deployed_at),
            "phase_started_at": _iso(self.phase_started_at),
            "consecutive_prometheus_errors": self.consecutive_prometheus_errors,
            "passing_since": _iso(self.passing_since),
            "last_snapshot_at": _iso(self.last_snapshot_at),
            "cusum": self.cusum.to_dict(),
            "latency_cusum": self.latency_cusum.to_dict(),
            "floor_cusum": self.floor_cusum.to_dict(),
            "phase_mark": None if mark is None else {"requests": mark.requests, "failures": mark.failures},
            "phase_mark_at": _iso(self.phase_mark_at),
            "pause_mark_failures": self.pause_mark_failures,
            "manual_review": self.manual_review,
            "fresh_from": _iso(self.fresh_from),
            "prometheus_outage": self.prometheus_outage,
            "baseline_version": self.baseline_version,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "GateState":
        pause_mark = data.get("pause_mark_failures")
        return cls(
            deployed_at=_parse(data["deployed_at"]),
            phase_started_at=_parse(data["phase_started_at"]),
            consecutive_prometheus_errors=int(data.get("consecutive_prometheus_errors", 0)),
            passing_since=_parse(data.get("passing_since")),
            last_snapshot_at=_parse(data.get("last_snapshot_at")),
            cusum=CusumState.from_dict(data.get("cusum")),
            latency_cusum=LatencyCusumState.from_dict(data.get("latency_cusum")),
            floor_cusum=FloorCusumState.from_dict(data.get("floor_cusum")),
            phase_mark=_totals(data.get("phase_mark")),
            phase_mark_at=_parse(data.get("phase_mark_at")),
            pause_mark_failures=None if pause_mark is None else float(pause_mark),
            manual_review=data.get("manual_review") or None,
            fresh_from=_parse(data.get("fresh_from")),
            prometheus_outage=bool(data.get("prometheus_outage", False)),
            baseline_version=data.get("baseline_version"),
        )

    def entering_phase(self, at: datetime) -> "GateState":
        """State for the next gray phase (promoted, paused or resumed): the phase clock and its sample restart;
        health, the sequential tests, a pending manual review and the freshness mark carry over."""
        return replace(self, phase_started_at=at, phase_mark=None, phase_mark_at=None, pause_mark_failures=None)

    def acknowledged(self) -> "GateState":
        """A person acknowledged the manual review."""
        return replace(self, manual_review=None, consecutive_prometheus_errors=0)


@dataclass(frozen=True)
class Finding:
    """One rule's result, in words, with its numbers (rounded, in `unit`) and the query that shows them."""

    rule: str
    effect: Effect | None  # None: the rule passed
    text: str
    measured: float | None = None
    threshold: float | None = None
    query: str | None = None
    unit: str = explain.STAT
    headline: str | None = None  # a plain clause for the verdict sentence when this rule decides

    def to_dict(self) -> dict:
        return {"rule": self.rule, "fired": self.effect is not None,
                "effect": None if self.effect is None else self.effect.action,
                "text": self.text, "measured": explain.rounded(self.measured, self.unit),
                "threshold": explain.rounded(self.threshold, self.unit), "unit": self.unit, "query": self.query}
