"""Counters and histograms that every Rollgate process (web, workers, beat) adds to, kept in Redis.

The work Rollgate measures happens in many processes and pods; prometheus_client's own registry would only show
the process that happens to answer the scrape. So observations go to Redis hashes (a few bytes per metric and label
set) and `/metrics` (observability/collector.py) reads them back. Best effort by design: a Redis hiccup is logged
and never fails the work being measured. Counts start at zero when Redis is emptied, which Prometheus treats as a
counter reset.
"""
import json
import logging
import os
import socket
import time
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# Seconds. Gate evaluations take a Prometheus round trip; stopping a canary takes a gate tick or an alert plus a
# traffic move.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
PROCESS_GAUGE_STALE_SECONDS = 90.0  # a process that has not refreshed its gauge for this long is gone


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def _key(kind: str, name: str) -> str:
    return f"{settings.ROLLGATE_CHANNEL_PREFIX}:metrics:{kind}:{name}"


def _labels(labels: dict) -> str:
    return json.dumps({k: str(v) for k, v in sorted(labels.items())}, separators=(",", ":"))


def increment(name: str, amount: float = 1, **labels) -> None:
    try:
        _client(settings.REDIS_URL).hincrbyfloat(_key("counter", name), _labels(labels), amount)
    except redis.RedisError as error:
        logger.warning("metric %s not counted: %s", name, type(error).__name__)


def observe(name: str, value: float, *, buckets=DURATION_BUCKETS, **labels) -> None:
    """One histogram observation: cumulative bucket counts, sum and count per label set."""
    label_key = _labels(labels)
    try:
        pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
        key = _key("histogram", name)
        for bound in buckets:  # every bucket exists (0 too): Prometheus needs the whole ladder
            pipe.hincrby(key, f"{label_key}|{bound}", 1 if value <= bound else 0)
        pipe.hincrby(key, f"{label_key}|+Inf", 1)
        pipe.hincrbyfloat(key, f"{label_key}|sum", value)
        pipe.execute()
    except redis.RedisError as error:
        logger.warning("metric %s not observed: %s", name, type(error).__name__)


def first_time(name: str, *, ttl_seconds: int = 7 * 86400) -> bool:
    """True the first time `name` is asked about (within ttl): an observation made once even when the work that
    triggers it is delivered twice (a redriven message). On a Redis error: True (better twice than never)."""
    try:
        return bool(_client(settings.REDIS_URL).set(_key("once", name), 1, nx=True, ex=ttl_seconds))
    except redis.RedisError:
        return True


def process_gauge_set(name: str, value: float) -> None:
    """This process's value of a gauge summed over processes (open sockets); refresh it at least every minute."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    try:
        _client(settings.REDIS_URL).hset(_key("pgauge", name), owner, json.dumps({"v": value, "at": time.time()}))
    except redis.RedisError as error:
        logger.warning("gauge %s not set: %s", name, type(error).__name__)


# --- reading (the /metrics collector) ------------------------------------------------------------------------


def read_counter(name: str) -> dict[str, float]:
    """{labels_json: value}"""
    raw = _client(settings.REDIS_URL).hgetall(_key("counter", name))
    return {k.decode(): float(v) for k, v in raw.items()}


def read_histogram(name: str) -> dict[str, dict]:
    """{labels_json: {"buckets": {bound_text: count}, "sum": s, "count": n}}"""
    out: dict[str, dict] = {}
    for field, value in _client(settings.REDIS_URL).hgetall(_key("histogram", name)).items():
        label_key, _, part = field.decode().rpartition("|")
        entry = out.setdefault(label_key, {"buckets": {}, "sum": 0.0, "count": 0})
        if part == "sum":
            entry["sum"] = float(value)
        elif part == "+Inf":
            entry["count"] = int(value)
        else:
            entry["buckets"][part] = int(value)
    return out


def read_process_gauge(name: str) -> float:
    """The sum over live processes; entries of processes that stopped refreshing are dropped."""
    client = _client(settings.REDIS_URL)
    key, now, total, stale = _key("pgauge", name), time.time(), 0.0, []
    for owner, raw in client.hgetall(key).items():
        entry = json.loads(raw)
        if now - entry["at"] > PROCESS_GAUGE_STALE_SECONDS:
            stale.append(owner)
        else:
            total += entry["v"]
    if stale:
        client.hdel(key, *stale)
    return total
