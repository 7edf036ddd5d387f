"""Trace-result batches: the partial-batch rule and posting a batch over HTTP."""

import pytest

from rollgate_client import (
    BatchRejectedError,
    ResultsPostError,
    RoutingClient,
    TraceResult,
    post_results,
    validate_batch,
)

from .loopback_servers import ResultsServer, free_loopback_port


def result_item(number=0, **changes):
    item = {
        "trace_id": f"trace-{number}",
        "agent_id": "agent-338",
        "version": "v3.3.1",
        "ok": True,
        "latency_ms": 812.5,
        "callback_ok": True,
        "tokens": 1534,
    }
    item.update(changes)
    return item


def test_full_batch_of_1000_valid_results_is_kept_in_order():
    items = [result_item(n) for n in range(1000)]
    valid, errors = validate_batch(items)
    assert errors == {}
    assert [result.trace_id for result in valid] == [f"trace-{n}" for n in range(1000)]
    assert valid[0] == TraceResult(
        trace_id="trace-0", agent_id="agent-338", version="v3.3.1", ok=True,
        latency_ms=812.5, tokens=1534, callback_ok=True,
    )


def test_malformed_items_are_reported_by_index_field_and_rule_and_the_valid_ones_kept():
    items = [
        result_item(0),
        result_item(1, latency_ms=-5),
        "not an object",
        result_item(3, ok=1, tokens=True),
        result_item(4),
        {key: value for key, value in result_item(5).items() if key != "version"},
        result_item(6, latency=3),
        result_item(7, callback_ok=None),
    ]
    valid, errors = validate_batch(items)
    assert [result.trace_id for result in valid] == ["trace-0", "trace-4", "trace-7"]
    assert errors == {
        1: ["items[1].latency_ms: must be a number from 0 to 86400000, got -5"],
        2: ["items[2]: must be an object, got str"],
        3: [
            "items[3].ok: must be true or false, got 1",
            "items[3].tokens: must be a whole number from 0 to 1000000000, got True",
        ],
        5: ["items[5].version: is required"],
        6: [
            "items[6]: unknown field(s) latency; allowed: agent_id, callback_ok, cost, eval_score, latency_ms, model, "
            "ok, steps, tokens, tokens_in, tokens_out, tool_calls, tool_errors, trace_id, ttft_ms, version"
        ],
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trace_id": ""}, "items[0].trace_id: must be a non-empty string"),
        ({"agent_id": None}, "items[0].agent_id: must be a non-empty string"),
        ({"version": "v" * 201}, "items[0].version: must be a non-empty string of at most 200"),
        ({"latency_ms": float("inf")}, "items[0].latency_ms: must be a number"),
        ({"latency_ms": "12"}, "items[0].latency_ms: must be a number"),
        ({"tokens": 1.5}, "items[0].tokens: must be a whole number"),
        ({"callback_ok": "yes"}, "items[0].callback_ok: must be true, false or null"),
    ],
)
def test_each_field_rule_is_named(changes, message):
    valid, errors = validate_batch([result_item(**changes)])
    assert valid == []
    assert message in errors[0][0]


def test_callback_ok_may_be_left_out():
    item = result_item()
    del item["callback_ok"]
    valid, errors = validate_batch([item])
    assert errors == {} and valid[0].callback_ok is None


def test_oversized_batch_or_non_list_is_rejected_whole():
    with pytest.raises(BatchRejectedError, match="at most 1000 results per batch, got 1001; split the batch"):
        validate_batch([result_item(n) for n in range(1001)])
    with pytest.raises(BatchRejectedError, match="at most 10 results per batch, got 11"):
        validate_batch([result_item(n) for n in range(11)], max_batch_size=10)
    with pytest.raises(BatchRejectedError, match="items: must be a list of trace results, got dict"):
        validate_batch({"items": []})
    assert validate_batch([]) == ([], {})


def test_batch_of_1000_is_one_request_and_the_answer_names_bad_indexes(results_server):
    items = [result_item(n) for n in range(1000)]
    items[17] = result_item(17, tokens=-1)
    answer = post_results(results_server.url, items)
    assert len(results_server.batches) == 1 and len(results_server.batches[0]) == 1000
    assert answer["accepted"] == 999 and answer["rejected"] == 1
    assert answer["errors"] == [
        {"index": 17, "messages": ["items[17].tokens: must be a whole number from 0 to 1000000000, got -1"]}
    ]


def test_client_posts_trace_result_objects_to_its_results_url(results_server):
    client = RoutingClient(None, default_stable="v3.3.0", results_url=results_server.url)
    results = [TraceResult("t-1", "agent-338", "v3.3.0", False, 30_000.0, 0, None)]
    assert client.post_results(results) == {"accepted": 1, "rejected": 0, "errors": []}
    assert results_server.batches == [[results[0].to_dict()]]


def test_oversized_batch_is_refused_before_anything_is_sent(results_server):
    with pytest.raises(BatchRejectedError):
        post_results(results_server.url, [result_item(n) for n in range(1001)])
    assert results_server.batches == []


def test_server_refusal_and_unreachable_server_raise_a_clear_error():
    refusing = ResultsServer(fail_with_status=503)
    try:
        with pytest.raises(ResultsPostError, match="HTTP 503: unavailable"):
            post_results(refusing.url, [result_item()])
    finally:
        refusing.stop()
    with pytest.raises(ResultsPostError, match="Connection refused"):
        post_results(f"http://127.0.0.1:{free_loopback_port()}/api/trace-results", [result_item()])
    with pytest.raises(ValueError, match="results_url: not configured"):
        RoutingClient(None, default_stable="v1").post_results([result_item()])
