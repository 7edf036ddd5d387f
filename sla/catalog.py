"""The metric catalog: one PromQL template per SLA metric, per release or grouped for many releases.

Metrics contract (what every agent service, the demo agent and the trace-result exporter export)
------------------------------------------------------------------------------------------------
All series carry the labels ``service``, ``env`` and ``version`` (names configurable through
:class:`LabelNames`); the metric names are configurable through :class:`MetricNames`.

=======================================================  =========  =============================================
series                                                   type       meaning
=======================================================  =========  =============================================
``agent_requests_total{service,env,version,outcome}``    counter    traces handled; ``outcome`` is ``ok`` or
                                                                    ``error`` (failed or timed out)
``agent_request_latency_seconds_bucket{...,le}``         histogram  trace latency in seconds (``_sum``/``_count``
                                                                    too); bucket bounds identical across versions
``agent_callback_total{service,env,version,outcome}``    counter    result callbacks to the output channel;
                                                                    ``outcome`` is ``ok`` or ``error``
``agent_tokens_total{service,env,version}``              counter    model tokens consumed
``agent_log_errors_total{service,env,version}``          counter    ERROR-level log lines
``agent_crashes_total{service,env,version}``             counter    agent process/container crashes (restarts)
``process_resident_memory_bytes{service,env,version}``   gauge      resident memory of each agent process
=======================================================  =========  =============================================

LLM quality series (optional: a service that does not send them simply has no quality readings, and the quality
rules pass it by): ``agent_eval_score_sum``/``_count`` and ``agent_eval_score_squared_total`` (evaluator scores
0-1), ``agent_tool_calls_total``/``agent_tool_errors_total``, the histograms ``agent_steps`` (loop iterations)
and ``agent_ttft_seconds`` (time to first token), ``agent_cost_total`` and ``agent_cost_squared_total`` (its spread),
``agent_cost_successes_total`` (the successful traces of the same results: cost per success divides by it),
``agent_cost_unknown_total`` (traces naming
a model that has no price and sending no cost).  routing/metrics.py exports them from
trace results.

Counters may be created lazily (a version that never failed may have no ``outcome="error"`` series); the
templates below treat a missing error series as zero *when the total exists*, so "no failures" and "no data"
stay distinguishable.

Every template is an instant query over a window (``[<window>s]``).  ``for_release`` gives the query for one
release (what a human pastes into Prometheus); ``grouped`` gives the same query aggregated ``by (service, env,
version)`` over a label selector that covers many releases, so the gate evaluates N releases with a fixed
number of HTTP requests.  Both are built from the same template, so a grouped result for one release equals the
per-release query's result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class LabelNames:
    service: str = "service"
    env: str = "env"
    version: str = "version"
    outcome: str = "outcome"
    bucket_bound: str = "le"
    outcome_ok: str = "ok"
    outcome_error: str = "error"

    @property
    def release_key(self) -> tuple[str, str, str]:
        return (self.service, self.env, self.version)


@dataclass(frozen=True)
class MetricNames:
    requests: str = "agent_requests_total"
    latency_histogram: str = "agent_request_latency_seconds"
    callbacks: str = "agent_callback_total"
    tokens: str = "agent_tokens_total"
    log_errors: str = "agent_log_errors_total"
    crashes: str = "agent_crashes_total"
    resident_memory: str = "process_resident_memory_bytes"
    eval_score: str = "agent_eval_score"  # summary: _sum and _count
    eval_score_squared: str = "agent_eval_score_squared_total"
    tool_calls: str = "agent_tool_calls_total"
    tool_errors: str = "agent_tool_errors_total"
    steps_histogram: str = "agent_steps"
    ttft_histogram: str = "agent_ttft_seconds"
    cost: str = "agent_cost_total"
    cost_squared: str = "agent_cost_squared_total"  # sum of squared trace costs (the cost test's variance)
    cost_successes: str = "agent_cost_successes_total"  # successful traces of the same results as the cost
    cost_unknown: str = "agent_cost_unknown_total"  # traces naming a model with no price and no cost

    @property
    def latency_buckets(self) -> str:
        return f"{self.latency_histogram}_bucket"


class Metric(str, Enum):
    """SLA metrics from the design document plus the raw counts the statistics need."""

    TRACE_SUCCESS_RATE = "trace_success_rate"
    TRACE_LATENCY_P95 = "trace_latency_p95"  # seconds
    AGENT_CRASH_COUNT = "agent_crash_count"
    MEMORY_PEAK_BYTES = "memory_peak_bytes"  # numerator of memory_spike_ratio
    MEMORY_MEAN_BYTES = "memory_mean_bytes"  # denominator (taken from the baseline)
    CALLBACK_FAILURE_RATE = "callback_failure_rate"
    LOG_ERROR_COUNT = "log_error_count"
    QPS = "qps"
    TOKEN_COST_AVG = "token_cost_avg"
    REQUEST_COUNT = "request_count"
    FAILED_REQUEST_COUNT = "failed_request_count"
    CALLBACK_COUNT = "callback_count"
    LATENCY_BUCKETS = "latency_buckets"  # one sample per `le`, cumulative counts in the window
    REQUEST_COUNTER_TOTALS = "request_counter_totals"  # raw counters by outcome, no window (sequential test)
    LATENCY_BUCKET_TOTALS = "latency_bucket_totals"  # raw cumulative bucket counters, no window (sequential test)
    SCRAPE_GAP = "scrape_gap"  # seconds: the longest time in the window without a fresh sample of the version
    # LLM quality (sla/quality.py): canary vs stable
    EVAL_SCORE_MEAN = "eval_score_mean"
    EVAL_SCORE_SQUARES_MEAN = "eval_score_squares_mean"  # with the mean: the variance for the test
    EVAL_SCORE_COUNT = "eval_score_count"
    TOOL_ERROR_RATE = "tool_error_rate"
    TOOL_CALL_COUNT = "tool_call_count"
    TOOL_ERROR_COUNT = "tool_error_count"
    STEPS_P95 = "steps_p95"
    TTFT_P95 = "ttft_p95"  # seconds
    COST_PER_SUCCESS = "cost_per_success"  # cost of every trace / successful traces
    COST_SQUARES_PER_SUCCESS = "cost_squares_per_success"  # sum of squared trace costs / successful traces
    SUCCESS_COUNT = "success_count"  # successful traces among the results that report cost (cost's denominator)
    COST_UNKNOWN_COUNT = "cost_unknown_count"  # traces whose cost could not be known (unpriced model, no cost)


# memory_spike_ratio = canary peak memory / stable mean memory: it spans two versions, so it is derived in
# Python from MEMORY_PEAK_BYTES and MEMORY_MEAN_BYTES (both queries are kept on the derived reading).
MEMORY_SPIKE_RATIO = "memory_spike_ratio"


@dataclass(frozen=True)
class ReleaseSelector:
    """The label values of one version of one service in one environment."""

    service: str
    env: str
    version: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.service, self.env, self.version)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _regex_alternatives(values) -> str:
    # PromQL regexes are RE2 and fully anchored; re.escape output is RE2-compatible.
    return "|".join(re.escape(v) for v in sorted(set(values)))


@dataclass(frozen=True)
class MetricCatalog:
    labels: LabelNames = field(default_factory=LabelNames)
    names: MetricNames = field(default_factory=MetricNames)
    latency_quantile: float = 0.95

    # -- selectors -------------------------------------------------------------------------------------------
    def release_matchers(self, release: ReleaseSelector) -> str:
        lb = self.labels
        return ",".join(
            [
                f"{lb.service}={_quote(release.service)}",
                f"{lb.env}={_quote(release.env)}",
                f"{lb.version}={_quote(release.version)}",
            ]
        )

    def group_matchers(self, releases) -> str:
        """One selector covering every release given (it may also match their cross product; the caller
        picks the keys it asked for)."""
        releases = list(releases)
        if not releases:
            raise ValueError("group_matchers needs at least one release")
        lb = self.labels
        return ",".join(
            [
                f"{lb.service}=~{_quote(_regex_alternatives(r.service for r in releases))}",
                f"{lb.env}=~{_quote(_regex_alternatives(r.env for r in releases))}",
                f"{lb.version}=~{_quote(_regex_alternatives(r.version for r in releases))}",
            ]
        )

    # -- templates -------------------------------------------------------------------------------------------
    def template(self, metric: Metric, *, matchers: str, by: str, window_s: int) -> str:
        """PromQL for `metric` aggregated `by (<by>)` over series matching `matchers`.

        `by` is "" for a single release (everything summed) or "service, env, version" for a batch.
        """
        n, lb = self.names, self.labels
        w = f"[{int(window_s)}s]"
        by_clause = f" by ({by})" if by else ""
        by_le = f" by ({by + ', ' if by else ''}{lb.bucket_bound})"
        by_outcome = f" by ({by + ', ' if by else ''}{lb.outcome})"
        err = f'{lb.outcome}="{lb.outcome_error}"'

        def observed(metric_name: str, sel: str) -> str:
            # What each counter counted since its first scrape inside the window: no extrapolation, unlike
            # increase(), which stretches a young series' few scrapes over the whole window (two scrapes a second
            # apart count double) and would hand the statistical tests trials nobody observed.  A reset inside
            # the window counts from the lowest value on, never more than was seen.
            series = f"{metric_name}{{{sel}}}"
            return f"({series} - min_over_time({series}{w}))"

        def total(metric_name: str, extra: str = "") -> str:
            sel = f"{matchers},{extra}" if extra else matchers
            return f"sum{by_clause} {observed(metric_name, sel)}"

        def ratio_of_errors(metric_name: str) -> str:
            # A missing error series means zero errors only where the total exists: `or (total * 0)`.
            errors = total(metric_name, err)
            all_ = total(metric_name)
            return f"({errors} or ({all_} * 0)) / {all_}"

        if metric is Metric.REQUEST_COUNT:
            return total(n.requests)
        if metric is Metric.FAILED_REQUEST_COUNT:
            return f"({total(n.requests, err)} or ({total(n.requests)} * 0))"
        if metric is Metric.TRACE_SUCCESS_RATE:
            # 1 - error ratio rather than ok/total: a version whose every trace failed has no `ok` series.
            return f"1 - ({ratio_of_errors(n.requests)})"
        if metric is Metric.TRACE_LATENCY_P95:
            return (
                f"histogram_quantile({self.latency_quantile}, "
                f"sum{by_le} {observed(n.latency_buckets, matchers)})"
            )
        if metric is Metric.LATENCY_BUCKETS:
            return f"sum{by_le} {observed(n.latency_buckets, matchers)}"
        if metric is Metric.CALLBACK_FAILURE_RATE:
            return ratio_of_errors(n.callbacks)
        if metric is Metric.CALLBACK_COUNT:
            return total(n.callbacks)
        if metric is Metric.LOG_ERROR_COUNT:
            return total(n.log_errors)
        if metric is Metric.AGENT_CRASH_COUNT:
            return total(n.crashes)
        if metric is Metric.QPS:
            return f"sum{by_clause} (rate({n.requests}{{{matchers}}}{w}))"
        if metric is Metric.TOKEN_COST_AVG:
            return f"{total(n.tokens)} / {total(n.requests)}"
        if metric is Metric.MEMORY_PEAK_BYTES:
            return f"max{by_clause} (max_over_time({n.resident_memory}{{{matchers}}}{w}))"
        if metric is Metric.MEMORY_MEAN_BYTES:
            return f"avg{by_clause} (avg_over_time({n.resident_memory}{{{matchers}}}{w}))"
        if metric is Metric.REQUEST_COUNTER_TOTALS:
            # Raw cumulative counters (no window): the sequential test differences successive evaluations.
            return f"sum{by_outcome} ({n.requests}{{{matchers}}})"
        if metric is Metric.LATENCY_BUCKET_TOTALS:
            return f"sum{by_le} ({n.latency_buckets}{{{matchers}}})"
        if metric is Metric.EVAL_SCORE_MEAN:
            return f"{total(n.eval_score + '_sum')} / {total(n.eval_score + '_count')}"
        if metric is Metric.EVAL_SCORE_SQUARES_MEAN:
            return f"{total(n.eval_score_squared)} / {total(n.eval_score + '_count')}"
        if metric is Metric.EVAL_SCORE_COUNT:
            return total(n.eval_score + "_count")
        if metric is Metric.TOOL_ERROR_RATE:
            return f"{total(n.tool_errors)} / {total(n.tool_calls)}"
        if metric is Metric.TOOL_CALL_COUNT:
            return total(n.tool_calls)
        if metric is Metric.TOOL_ERROR_COUNT:
            return total(n.tool_errors)
        if metric in (Metric.STEPS_P95, Metric.TTFT_P95):
            name = n.steps_histogram if metric is Metric.STEPS_P95 else n.ttft_histogram
            return f"histogram_quantile({self.latency_quantile}, sum{by_le} {observed(name + '_bucket', matchers)})"
        # Cost per successful task divides by the successes of the same trace results as the cost, never by the
        # agents' own request counter: two sources scraped at different moments drift apart by the posting lag.
        if metric is Metric.COST_PER_SUCCESS:
            return f"{total(n.cost)} / {total(n.cost_successes)}"
        if metric is Metric.COST_SQUARES_PER_SUCCESS:
            return f"{total(n.cost_squared)} / {total(n.cost_successes)}"
        if metric is Metric.COST_UNKNOWN_COUNT:
            return total(n.cost_unknown)
        if metric is Metric.SUCCESS_COUNT:
            return total(n.cost_successes)
        if metric is Metric.SCRAPE_GAP:
            # At each step of the window: the age of the freshest sample of the version (min over its series,
            # so a replaced pod's stale series does not count); the largest such age is the longest hole.
            return (f"max_over_time((min{by_clause} (time() - timestamp({n.requests}{{{matchers}}})))"
                    f"[{int(window_s)}s:{scrape_gap_resolution_s(window_s)}s])")
        raise ValueError(f"unknown metric {metric!r}")

    def for_release(self, metric: Metric, release: ReleaseSelector, window_s: int) -> str:
        """The query a person pastes into Prometheus: only this release's series, summed to one."""
        return self.template(metric, matchers=self.release_matchers(release), by="", window_s=window_s)

    def grouped(self, metric: Metric, releases, window_s: int) -> str:
        return self.template(
            metric,
            matchers=self.group_matchers(releases),
            by=", ".join(self.labels.release_key),
            window_s=window_s,
        )

    def memory_spike_ratio(self, canary: ReleaseSelector, baseline: ReleaseSelector, window_s: int) -> str:
        """Single query for the derived ratio (for people; the gate derives it from two batched queries)."""
        peak = self.for_release(Metric.MEMORY_PEAK_BYTES, canary, window_s)
        mean = self.for_release(Metric.MEMORY_MEAN_BYTES, baseline, window_s)
        return f"{peak} / scalar({mean})"


def scrape_gap_resolution_s(window_s: float) -> int:
    """Step of the scrape-gap subquery: 1 s for short windows, at most 5 s (120 steps over 10 minutes)."""
    return int(max(1, min(5, window_s // 60)))


# Metrics the gate fetches per batch; each is one HTTP request whatever the number of releases.
WINDOWED_METRICS: tuple[Metric, ...] = (
    Metric.REQUEST_COUNT,
    Metric.FAILED_REQUEST_COUNT,
    Metric.TRACE_SUCCESS_RATE,
    Metric.TRACE_LATENCY_P95,
    Metric.LATENCY_BUCKETS,
    Metric.CALLBACK_FAILURE_RATE,
    Metric.CALLBACK_COUNT,
    Metric.LOG_ERROR_COUNT,
    Metric.AGENT_CRASH_COUNT,
    Metric.QPS,
    Metric.TOKEN_COST_AVG,
    Metric.MEMORY_PEAK_BYTES,
    Metric.MEMORY_MEAN_BYTES,
    Metric.SCRAPE_GAP,
)

# The LLM quality metrics (sla/quality.py); fetched with the others, one HTTP request each per batch.
QUALITY_METRICS: tuple[Metric, ...] = (
    Metric.EVAL_SCORE_MEAN,
    Metric.EVAL_SCORE_SQUARES_MEAN,
    Metric.EVAL_SCORE_COUNT,
    Metric.TOOL_ERROR_RATE,
    Metric.TOOL_CALL_COUNT,
    Metric.TOOL_ERROR_COUNT,
    Metric.STEPS_P95,
    Metric.TTFT_P95,
    Metric.COST_PER_SUCCESS,
    Metric.COST_SQUARES_PER_SUCCESS,
    Metric.SUCCESS_COUNT,
    Metric.COST_UNKNOWN_COUNT,
)
WINDOWED_METRICS = WINDOWED_METRICS + QUALITY_METRICS
