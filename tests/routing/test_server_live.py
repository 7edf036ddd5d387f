"""Against the real ASGI app under uvicorn on 127.0.0.1: a routing change reaches a connected RoutingClient
within 1 s, the long-poll answers 304 when nothing changes, and trace-result batches keep their valid items."""
import http.client
import json
import time

import pytest

from releases.choices import ReleaseStatus
from releases.services import Actor, release_promote
from rollgate_client import RoutingClient
from rollgate_client.results import ResultsPostError, post_results

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def canary(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.GRAY and release.gray_weight == 5
    return release


def _get(server, path, headers):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_a_promotion_reaches_a_connected_client_within_one_second(asgi_server, canary, agent_key, rm):
    client = RoutingClient(f"{asgi_server.url}/api/routing/agent-infer/staging/", default_stable="v1.0.0",
                           service="agent-infer", environment="staging", wait_s=25, unreachable_after_s=60,
                           request_headers={"Authorization": f"Bearer {agent_key}"})
    try:
        first = client.wait_for_table(lambda table: table.canary_weight == 5.0, timeout_s=5)
        assert first is not None, client.last_error
        time.sleep(0.3)  # the client is now parked in a long-poll with the current ETag
        started = time.monotonic()
        release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=5)
        seen = client.wait_for_table(lambda table: table.canary_weight == 10.0, timeout_s=1.0)
        latency = time.monotonic() - started
        print(f"routing change reached the client in {latency * 1000:.0f} ms")
        assert seen is not None, f"client still at {client.table.canary_weight} % after 1 s ({client.last_error})"
        assert seen.revision > first.revision
        assert latency < 1.0
    finally:
        client.close()


def test_long_poll_holds_then_answers_304_with_the_same_etag(asgi_server, canary, agent_key):
    auth = {"Authorization": f"Bearer {agent_key}"}
    status, headers, body = _get(asgi_server, "/api/routing/agent-infer/staging/?wait=0", auth)
    assert status == 200
    etag = headers["etag"]
    started = time.monotonic()
    status, headers, body = _get(asgi_server, "/api/routing/agent-infer/staging/?wait=0.6",
                                 {**auth, "If-None-Match": etag})
    held = time.monotonic() - started
    assert (status, headers["etag"], body) == (304, etag, b"")
    assert 0.5 <= held < 3, held


def test_partial_batch_keeps_valid_items_and_reports_bad_ones_by_index(asgi_server, canary, agent_key,
                                                                        clean_trace_metrics):
    good = {"trace_id": "t-1", "agent_id": "agent-1", "version": "v1.1.0", "ok": True, "latency_ms": 120.0,
            "callback_ok": True, "tokens": 100}
    items = [good, {**good, "ok": "yes"}, {**good, "trace_id": "t-3", "ok": False, "latency_ms": 3000.0},
             {**good, "latency": 5}, {**good, "version": "v9.9.9"}]
    url = f"{asgi_server.url}/api/traces/results?service=agent-infer&environment=staging"
    answer = post_results(url, items, headers={"Authorization": f"Bearer {agent_key}"})
    assert (answer["accepted"], answer["rejected"]) == (2, 3)
    by_index = {error["index"]: " ".join(error["messages"]) for error in answer["errors"]}
    assert sorted(by_index) == [1, 3, 4]
    assert "items[1].ok" in by_index[1] and "latency" in by_index[3] and "v9.9.9" in by_index[4]

    status, _, body = _get(asgi_server, "/metrics/traces", {})
    text = body.decode()
    assert status == 200
    labels = 'service="agent-infer",env="staging",version="v1.1.0"'
    assert f'agent_requests_total{{{labels},outcome="ok"}} 1' in text
    assert f'agent_requests_total{{{labels},outcome="error"}} 1' in text
    assert f'agent_request_latency_seconds_bucket{{{labels},le="0.25"}} 1' in text
    assert f'agent_request_latency_seconds_bucket{{{labels},le="5"}} 2' in text
    assert f"agent_request_latency_seconds_sum{{{labels}}} 3.12" in text
    assert f"agent_tokens_total{{{labels}}} 200" in text


def test_results_endpoint_refuses_whole_batches_it_cannot_use(asgi_server, canary, agent_key):
    url = f"{asgi_server.url}/api/traces/results?service=agent-infer&environment=staging"
    auth = {"Authorization": f"Bearer {agent_key}"}
    with pytest.raises(ResultsPostError, match="401"):
        post_results(url, [])
    too_many = [{"trace_id": "t-1", "agent_id": "a", "version": "v1.1.0", "ok": True, "latency_ms": 1,
                 "tokens": 1}] * 1001
    connection = http.client.HTTPConnection("127.0.0.1", asgi_server.port, timeout=10)
    connection.request("POST", "/api/traces/results?service=agent-infer&environment=staging",
                       body=json.dumps(too_many), headers=auth)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 400 and "at most 1000" in body["detail"]
    with pytest.raises(ResultsPostError, match="403"):
        post_results(url.replace("staging", "prod"), [], headers=auth)
