"""/metrics/traces keeps the series of versions that still send results and drops the ones that stopped."""
import gzip
import time

import redis
from django.test import Client

from rollgate_client import TraceResult
from routing import metrics


def write(client, version: str, at: float, service: str = "agent-infer") -> None:
    result = TraceResult(trace_id="t", agent_id="a", version=version, ok=True, latency_ms=100.0, tokens=5,
                         callback_ok=True)
    ints, sums = metrics.aggregate(service, "staging", [result])
    pipe = client.pipeline()
    metrics.record(pipe, ints, sums, at)
    pipe.execute()


def test_versions_without_results_for_the_retention_leave_the_scrape_and_redis(db, settings, clean_trace_metrics):
    settings.ROLLGATE_TRACE_SERIES_RETENTION_SECONDS = 600
    store = redis.Redis.from_url(settings.REDIS_URL)
    write(store, "v1.0.0", time.time() - 3600)  # retired an hour ago
    write(store, "v1.1.0", time.time() - 60)  # still serving
    text = Client().get("/metrics/traces").content.decode()
    assert 'version="v1.1.0"' in text and 'version="v1.0.0"' not in text
    fields = [f.decode() for f in store.hkeys(metrics.HASH_KEY)]
    assert fields and not [f for f in fields if "v1.0.0" in f]
    assert [label.decode().split(metrics.SEP)[2] for label in store.hkeys(metrics.SEEN_KEY)] == ["v1.1.0"]
    write(store, "v1.0.0", time.time())  # the old version serves again: it starts from zero
    text = Client().get("/metrics/traces").content.decode()
    assert 'agent_requests_total{service="agent-infer",env="staging",version="v1.0.0",outcome="ok"} 1' in text
    store.close()


def test_counters_written_before_stamps_existed_get_the_full_retention(db, settings, clean_trace_metrics):
    store = redis.Redis.from_url(settings.REDIS_URL)
    write(store, "v0.9.0", time.time() - 99999)
    store.delete(metrics.SEEN_KEY)
    assert 'version="v0.9.0"' in Client().get("/metrics/traces").content.decode()
    assert store.hlen(metrics.SEEN_KEY) == 1
    store.close()


def test_scrape_is_gzipped_when_prometheus_asks(db, settings, clean_trace_metrics):
    store = redis.Redis.from_url(settings.REDIS_URL)
    for n in range(50):
        write(store, "v1.0.0", time.time(), service=f"svc-{n}")
    plain = Client().get("/metrics/traces")
    zipped = Client().get("/metrics/traces", HTTP_ACCEPT_ENCODING="gzip")
    assert zipped["Content-Encoding"] == "gzip" and gzip.decompress(zipped.content) == plain.content
    assert len(zipped.content) * 5 < len(plain.content)
    store.close()
