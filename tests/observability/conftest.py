import pytest
import redis
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def empty_metric_store():
    """Each test starts with no worker-side observations (the store lives in Redis, shared by test runs)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{settings.ROLLGATE_CHANNEL_PREFIX}:metrics:*"))
    if keys:
        client.delete(*keys)
    yield


def scrape(client=None, **headers) -> dict[tuple, float]:
    """GET /metrics -> {(sample name, frozenset(labels)): value}."""
    response = (client or APIClient()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))
