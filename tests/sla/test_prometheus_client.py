"""The Prometheus wrapper: readings carry their provenance, failures are typed, batches equal single queries."""

import time
from datetime import timedelta

import pytest

from sla.catalog import Metric, MetricCatalog, ReleaseSelector
from sla.gate import evaluate_many, fetch_readings
from sla.policy import SlaPolicy
from sla.prometheus import PrometheusClient, PrometheusUnavailable, QueryError
from sla.stats import CounterTotals
from sla.verdict import GateState, GrayRelease
from tests.sla.prometheus_fakes import free_port

from .conftest import CANARY, ENV, STABLE

CATALOG = MetricCatalog()


def test_grouped_readings_equal_the_per_release_queries(prom, history_end):
    selectors = [ReleaseSelector(service, ENV, CANARY) for service in ("healthy", "slow", "many-failures")]
    readings = fetch_readings(prom, selectors, window_s=300, at=history_end)
    for selector in selectors:
        for metric in (Metric.TRACE_SUCCESS_RATE, Metric.TRACE_LATENCY_P95, Metric.FAILED_REQUEST_COUNT):
            [single] = prom.instant(CATALOG.for_release(metric, selector, 300), window_s=300, at=history_end)
            batched = readings[selector.key].reading(metric)
            assert batched.value == pytest.approx(single.reading.value), (selector, metric)
            assert (batched.window_s, batched.at) == (300, history_end)
            # Fetched in one batch, shown with the release's own query (one series when pasted).
            assert batched.query == CATALOG.for_release(metric, selector, 300)


def test_unreachable_prometheus_raises_unavailable(history_end):
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with pytest.raises(PrometheusUnavailable, match="unreachable") as caught:
        client.instant("up", window_s=None, at=history_end)
    assert caught.value.query == "up"


def test_bad_promql_raises_query_error(prom, history_end):
    with pytest.raises(QueryError, match="rejected"):
        prom.instant("sum(rate(agent_requests_total[5m]", window_s=300, at=history_end)


def test_many_releases_cost_a_fixed_number_of_queries(prometheus, history_end):
    """200 releases (mostly without data) in one call: the 16 batched queries and the 12 LLM quality queries
    (sla.catalog.QUALITY_METRICS, over their own window) answer all of them."""
    client = PrometheusClient(prometheus.url)
    releases = [(GrayRelease(f"svc-{i}", ENV, CANARY, STABLE), GateState(history_end, history_end))
                for i in range(199)]
    # The healthy canary's phase began before its first trace: its whole history is the phase's sample.
    releases.append((GrayRelease("healthy", ENV, CANARY, STABLE),
                     GateState(history_end - timedelta(hours=1), history_end - timedelta(hours=1),
                               phase_mark=CounterTotals(0.0, 0.0), phase_mark_at=history_end - timedelta(hours=1))))
    queries = []
    original = client.instant

    def counting_instant(query, **kwargs):
        queries.append(query)
        return original(query, **kwargs)

    client.instant = counting_instant
    try:
        verdicts = evaluate_many(client, lambda r: SlaPolicy(evaluation_window_s=300, evaluation_interval_s=60),
                                 releases, at=history_end)
    finally:
        client.close()
    assert len(queries) == 16 + 12  # quality: ... traces of unknown cost (unpriced model), the spread of trace costs
    assert [v.outcome.value for v in verdicts[:199]] == ["NODATA"] * 199
    assert verdicts[-1].action == "ready_to_promote", "\n".join(verdicts[-1].reasons)


def test_live_scraped_canary_turning_bad_is_paused(prometheus, exporter):
    """The scrape path end to end: counters driven in this process, scraped every second, judged live."""
    policy = SlaPolicy(evaluation_window_s=60, evaluation_interval_s=5, min_sample_size=100)
    release = GrayRelease("live-bad", ENV, CANARY, STABLE)

    def tick(canary_error_rate):
        exporter.record("live-bad", ENV, STABLE, ok=950, errors=1)
        canary_errors = round(50 * canary_error_rate)
        exporter.record("live-bad", ENV, CANARY, ok=50 - canary_errors, errors=canary_errors)

    tick(0.0)
    prometheus.wait_for_series('agent_requests_total{service="live-bad"}', timeout_s=15)
    client = PrometheusClient(prometheus.url)
    state = None
    decided = None
    try:
        for second in range(30):  # bounded: ~3 s healthy, then 5 % canary errors
            tick(0.0 if second < 3 else 0.05)
            now = time_now()
            state = state or GateState(now - timedelta(minutes=10), now - timedelta(minutes=10))
            [verdict] = evaluate_many(client, lambda r: policy, [(release, state)], at=now)
            state = verdict.next_state
            if verdict.action == "pause":
                decided = second
                break
            time.sleep(1)
    finally:
        client.close()
    assert decided is not None and decided >= 3, "the bad canary was never paused"


def time_now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)
