"""SLA policy: pure data with the design document's defaults, validation and a JSON round trip.

Defaults (design document, chapters 8 and 9; the precedence table is in sla/verdict.py and the README):
  * advance to the next gray phase when the success rate >= 99.5 %, p95 <= stable baseline + 10 %, log
    errors are under their threshold, the phase has run one evaluation interval (10 min) AND the canary's
    sample since the phase began had the statistical power (``power``, 80 %) to show the regressions the
    policy guards (sla.stats.required_sample);
  * success rate < 99 %, or an error-rate regression against stable -> ramp paused  (blocked / pause);
  * >= 50 failed traces and worse than stable -> version blocked in routing         (blocked / block_version);
    while the gray ramp is still moving a pause rule wins; a paused canary that keeps failing is blocked
    once it fails 50 more times;
  * p95 > baseline + 20 % (window or sequential test), >= 3 crashes, memory >= 2x -> rollback;
  * callback failure rate > 2 %               -> "output channel anomaly"        (manual_review / hold),
    which stays until a person acknowledges it;
  * healthy for 1 hour                        -> healthy, allowed into the production main path;
  * a first snapshot within 30 minutes of the deploy, then one per evaluation interval, plus one for every
    verdict that changes something.
LLM quality (sla/quality.py; only for services whose trace results carry the fields), canary vs stable in the window:
  * mean eval score lower by >= 0.05 and significantly lower (Welch z, stop_significance) -> ramp paused;
  * tool error rate higher by >= 5 points and significantly higher (two-proportion z)      -> rollback;
  * cost per successful task > stable's + 30 %                                              -> manual_review;
  each needs at least ``min_quality_sample`` scored traces (tool calls, successful traces) on both sides, over
  the quality metrics' own ``quality_window_s`` (60 s).
``sequential_action: rollback`` restores chapter 7's "batch trace errors -> rollback" as a policy choice.

Every duration is in seconds (``from_dict`` also accepts "90s", "10m", "1h"), so demos and tests can run a
whole ramp in seconds.  Validation raises :class:`PolicyInvalid` whose ``errors`` map field name -> rule.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

NODATA_STATUSES = ("watching", "manual_review", "blocked")
SEQUENTIAL_ACTIONS = ("rollback", "pause", "manual_review")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class PolicyInvalid(ValueError):
    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {rule}" for name, rule in self.errors.items()))


def parse_duration_s(value) -> float:
    """Seconds from a number or a string like "45s", "10m", "1h"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f"expected seconds or a duration like '30s', '10m', '1h', got {value!r}")


@dataclass(frozen=True)
class SlaPolicy:
    # -- cadence (seconds) ------------------------------------------------------------------------------------
    evaluation_window_s: float = 600  # window of every windowed metric (success rate, p95, counts...)
    evaluation_interval_s: float = 600  # snapshot cadence; also the least time spent in a phase before advancing
    first_snapshot_within_s: float = 1800  # first SLA snapshot due at most this long after the deploy
    healthy_after_s: float = 3600  # passing continuously this long -> healthy, allowed into the prod main path

    # -- advancing --------------------------------------------------------------------------------------------
    advance_min_success_rate: float = 0.995
    advance_max_p95_increase: float = 0.10  # canary p95 <= baseline p95 * (1 + this)
    log_error_threshold: float = 100  # log errors in the window must stay under this to advance

    # -- failure rules ----------------------------------------------------------------------------------------
    pause_below_success_rate: float = 0.99
    rollback_p95_increase: float = 0.20  # canary p95 > baseline p95 * (1 + this) -> rollback
    block_failed_traces: float = 50  # failed traces in the window >= this -> block_version
    review_callback_failure_rate: float = 0.02  # callback failure rate > this -> manual_review
    rollback_crash_count: float = 3  # crashes in the window >= this -> rollback
    rollback_memory_spike_ratio: float = 2.0  # canary peak / stable mean resident memory >= this -> rollback

    # -- statistics -------------------------------------------------------------------------------------------
    min_sample_size: int = 300  # canary requests in the window below which threshold rules only watch
    min_callback_sample_size: int = 100
    # Fixed-window tests are re-run at every evaluation, so the alpha that may *stop* a canary (pause,
    # block_version, p95 rollback) is much smaller than the one that merely holds it back from advancing.
    significance: float = 0.05  # advancing requires "not significantly worse than stable" at this alpha
    stop_significance: float = 0.001  # pause / block / p95 rollback need this much evidence
    sequential_regression_factors: tuple[float, ...] = (3.0, 10.0, 30.0)  # canary/baseline error-rate ratios
    sequential_false_alarm_rate: float = 0.01  # bound on a false alarm within `sequential_horizon_events`
    sequential_horizon_events: int = 10000  # failed traces (canary + baseline) the bound covers (~3 h at 1 failure/s)
    sequential_action: str = "pause"  # what an error-rate regression does (design table: pause)
    floor_sequential_factors: tuple[float, ...] = (1.5, 3.0)  # failure rate x (1 - floor) the floor CUSUM looks for
    power: float = 0.8  # promote only when the phase's canary sample could show the guarded regressions

    # -- LLM quality (sla/quality.py) ---------------------------------------------------------------------------
    pause_eval_score_drop: float = 0.05  # canary mean eval score <= stable's - this, significantly -> pause
    rollback_tool_error_increase: float = 0.05  # canary tool error rate >= stable's + this, significantly -> rollback
    review_cost_increase: float = 0.30  # canary cost per successful task > stable's * (1 + this) -> manual_review
    min_quality_sample: int = 100  # scored traces / tool calls / successful traces needed on each side
    # The quality metrics' own window: a regression shows in a mean only once it fills most of the window, so a
    # shorter window than the error/latency one decides in about a minute (the tests still need the sample).
    quality_window_s: float = 60

    # -- trouble ----------------------------------------------------------------------------------------------
    nodata_status: str = "watching"  # what a canary without any series means
    prometheus_errors_before_manual_review: int = 3
    max_scrape_gap_s: float = 45  # a window with a longer hole in the scrapes is not complete: no promotion

    def __post_init__(self):
        errors = self.validation_errors()
        if errors:
            raise PolicyInvalid(errors)

    # ----------------------------------------------------------------------------------------------------------
    def validation_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}

        def positive(name):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                errors[name] = f"must be a number of seconds > 0, got {value!r}"

        def fraction(name, *, allow_zero=True):
            value = getattr(self, name)
            if not _is_number(value) or not (0 <= value <= 1) or (not allow_zero and value == 0):
                errors[name] = f"must be a fraction between 0 and 1, got {value!r}"

        def non_negative(name):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                errors[name] = f"must be a number >= 0, got {value!r}"

        def positive_int(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors[name] = f"must be a whole number >= 1, got {value!r}"

        for name in ("evaluation_window_s", "evaluation_interval_s", "first_snapshot_within_s", "healthy_after_s",
                     "max_scrape_gap_s", "quality_window_s"):
            positive(name)
        for name in ("advance_min_success_rate", "pause_below_success_rate", "review_callback_failure_rate"):
            fraction(name)
        for name in ("advance_max_p95_increase", "rollback_p95_increase", "log_error_threshold",
                     "review_cost_increase"):
            non_negative(name)
        for name in ("pause_eval_score_drop", "rollback_tool_error_increase"):
            fraction(name)
        for name in ("block_failed_traces", "rollback_crash_count"):
            positive(name)
        if _is_number(self.rollback_memory_spike_ratio) and self.rollback_memory_spike_ratio > 1:
            pass
        else:
            errors["rollback_memory_spike_ratio"] = f"must be a ratio > 1, got {self.rollback_memory_spike_ratio!r}"
        for name in ("min_sample_size", "min_callback_sample_size", "sequential_horizon_events",
                     "prometheus_errors_before_manual_review", "min_quality_sample"):
            positive_int(name)
        fraction("significance", allow_zero=False)
        fraction("stop_significance", allow_zero=False)
        fraction("sequential_false_alarm_rate", allow_zero=False)

        if "advance_min_success_rate" not in errors and "pause_below_success_rate" not in errors:
            if self.pause_below_success_rate > self.advance_min_success_rate:
                errors["pause_below_success_rate"] = (
                    f"must not exceed advance_min_success_rate ({self.advance_min_success_rate}), "
                    f"got {self.pause_below_success_rate}"
                )
        if "advance_max_p95_increase" not in errors and "rollback_p95_increase" not in errors:
            if self.rollback_p95_increase < self.advance_max_p95_increase:
                errors["rollback_p95_increase"] = (
                    f"must be >= advance_max_p95_increase ({self.advance_max_p95_increase}), "
                    f"got {self.rollback_p95_increase}"
                )
        for name in ("sequential_regression_factors", "floor_sequential_factors"):
            factors = getattr(self, name)
            if not isinstance(factors, tuple) or not factors or not all(_is_number(f) and f > 1 for f in factors):
                errors[name] = f"must be a non-empty list of ratios > 1, got {factors!r}"
        if not _is_number(self.power) or not 0.5 <= self.power < 1:
            errors["power"] = f"must be a probability from 0.5 to below 1 (0.8 is usual), got {self.power!r}"
        if self.sequential_action not in SEQUENTIAL_ACTIONS:
            errors["sequential_action"] = f"must be one of {', '.join(SEQUENTIAL_ACTIONS)}, got {self.sequential_action!r}"
        if self.nodata_status not in NODATA_STATUSES:
            errors["nodata_status"] = f"must be one of {', '.join(NODATA_STATUSES)}, got {self.nodata_status!r}"
        return errors

    # ----------------------------------------------------------------------------------------------------------
    @property
    def sequential_log_threshold(self) -> float:
        """CUSUM alarm level h: P(false alarm within n events) <= k * n * e^-h (see sla.stats)."""
        k = len(self.sequential_regression_factors)
        return math.log(k * self.sequential_horizon_events / self.sequential_false_alarm_rate)

    @property
    def floor_log_threshold(self) -> float:
        """Floor CUSUM alarm level: the same bound, the horizon counted in evaluations."""
        k = len(self.floor_sequential_factors)
        return math.log(k * self.sequential_horizon_events / self.sequential_false_alarm_rate)

    @property
    def latency_log_threshold(self) -> float:
        """Latency CUSUM alarm level (one hypothesis): the horizon counts traces slower than the stable p95."""
        return math.log(self.sequential_horizon_events / self.sequential_false_alarm_rate)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["sequential_regression_factors"] = list(self.sequential_regression_factors)
        data["floor_sequential_factors"] = list(self.floor_sequential_factors)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SlaPolicy":
        """Build from stored JSON; missing keys take the defaults, unknown keys are an error."""
        if not isinstance(data, dict):
            raise PolicyInvalid({"policy": f"must be a JSON object, got {type(data).__name__}"})
        known = {f.name: f for f in dataclasses.fields(cls)}
        errors: dict[str, str] = {}
        values = {}
        for name, raw in data.items():
            if name not in known:
                errors[name] = "unknown policy field"
                continue
            try:
                values[name] = _coerce(name, raw)
            except ValueError as exc:
                errors[name] = str(exc)
        if errors:
            # Report every problem at once: the fields that parsed are validated too.
            try:
                cls(**values)
            except PolicyInvalid as more:
                errors.update({k: v for k, v in more.errors.items() if k not in errors})
            raise PolicyInvalid(errors)
        return cls(**values)

    def with_overrides(self, overrides: dict) -> "SlaPolicy":
        """This policy with some fields replaced (per-service overrides); validated like from_dict."""
        merged = self.to_dict()
        merged.update(overrides)
        return SlaPolicy.from_dict(merged)


_INT_FIELDS = {"min_sample_size", "min_callback_sample_size", "sequential_horizon_events",
               "prometheus_errors_before_manual_review", "min_quality_sample"}


def _coerce(name: str, raw):
    if name.endswith("_s"):
        return parse_duration_s(raw)
    if name in ("sequential_regression_factors", "floor_sequential_factors"):
        if not isinstance(raw, (list, tuple)):
            raise ValueError(f"must be a list of ratios > 1, got {raw!r}")
        return tuple(raw)
    if name in _INT_FIELDS and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


DEFAULT_POLICY = SlaPolicy()
