"""The client against a real loopback server: long-poll, ETag, fallbacks and shutdown."""

import dataclasses
import time

import pytest

from rollgate_client import GrayRule, RoutingClient, RoutingTable

from .loopback_servers import TableServer, free_loopback_port, wait_until

STABLE, CANARY = "v3.3.0", "v3.3.1"


@pytest.fixture
def make_client():
    clients = []

    def make(url, **options):
        options.setdefault("default_stable", "v-configured")
        client = RoutingClient(url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def has_revision(revision):
    return lambda table: table.revision == revision


def test_routing_change_reaches_a_connected_client_long_before_its_poll_ends(
    table_server, gray_table, make_client, capsys
):
    client = make_client(table_server.url, wait_s=20)
    assert client.wait_for_table(has_revision(1), timeout_s=3) is not None
    assert table_server.wait_until_client_waiting()

    published_at = time.monotonic()
    table_server.publish(dataclasses.replace(gray_table, revision=2, canary_weight=50))
    received = client.wait_for_table(has_revision(2), timeout_s=3)
    latency_s = time.monotonic() - published_at

    # The client was 20 s into a long-poll: getting the change within the 3 s deadline means the
    # server pushed it, not that the client polled again.
    assert received is not None and received.canary_weight == 50
    with capsys.disabled():
        print(f"\n[routing] table change reached the connected client in {latency_s * 1000:.1f} ms")


def test_client_follows_the_served_table(table_server, gray_table, make_client):
    client = make_client(table_server.url, wait_s=20)
    client.wait_for_table(has_revision(1), timeout_s=3)
    ids = [f"trace-{n}" for n in range(2_000)]
    shares = {version: 0 for version in (STABLE, CANARY)}
    for trace_id in ids:
        shares[client.choose(trace_id)] += 1
    assert 0.25 < shares[CANARY] / len(ids) < 0.35

    table_server.publish(dataclasses.replace(gray_table, revision=2, blocked_versions=(CANARY,)))
    client.wait_for_table(has_revision(2), timeout_s=3)
    assert {client.choose(trace_id) for trace_id in ids} == {STABLE}


def test_unchanged_table_is_confirmed_by_304_and_stays_fresh(table_server, make_client):
    client = make_client(table_server.url, wait_s=0.3, unreachable_after_s=1.3)
    client.wait_for_table(has_revision(1), timeout_s=3)
    assert wait_until(lambda: table_server.statuses.count(304) >= 4, timeout_s=5)
    assert client.fresh
    assert table_server.if_none_match[-1] == client.table.etag
    assert table_server.statuses.count(200) == 1


def test_long_polls_reuse_one_keep_alive_connection(table_server, make_client):
    client = make_client(table_server.url, wait_s=0.2, unreachable_after_s=1.2)
    assert wait_until(lambda: table_server.statuses.count(304) >= 3, timeout_s=5)
    assert table_server.httpd.connections_accepted == 1
    assert client.failed_polls == 0


def test_server_closing_the_connection_is_not_counted_as_an_outage(gray_table, make_client):
    closing_server = TableServer(gray_table, keep_alive=False)
    try:
        client = make_client(closing_server.url, wait_s=0.2, unreachable_after_s=1.2)
        assert wait_until(lambda: closing_server.statuses.count(304) >= 3, timeout_s=5)
        assert client.failed_polls == 0 and client.fresh
        assert closing_server.httpd.connections_accepted >= 4
    finally:
        client.close()
        closing_server.stop()


def test_dropped_keep_alive_connection_is_retried_at_once(table_server, gray_table, make_client):
    client = make_client(table_server.url, wait_s=20)
    client.wait_for_table(has_revision(1), timeout_s=3)
    assert table_server.wait_until_client_waiting()
    table_server.httpd.drop_open_connections()  # a proxy cutting an idle connection
    assert wait_until(lambda: table_server.httpd.connections_accepted == 2, timeout_s=3)
    table_server.publish(dataclasses.replace(gray_table, revision=2))
    assert client.wait_for_table(has_revision(2), timeout_s=3) is not None
    assert client.failed_polls == 0


def test_client_answers_configured_stable_when_server_is_down_from_the_start(make_client):
    url = f"http://127.0.0.1:{free_loopback_port()}/api/routing/agent-infer/prod"
    client = make_client(url, default_stable="v3.2.0", backoff_initial_s=0.05, backoff_max_s=0.2)
    assert {client.choose(f"trace-{n}", tenant="acme") for n in range(1_000)} == {"v3.2.0"}
    assert wait_until(lambda: client.last_error is not None, timeout_s=3)
    assert "ConnectionRefused" in client.last_error
    assert client.table is None and client.running


def test_client_keeps_the_last_table_when_the_server_goes_away_then_falls_back_to_its_stable(
    gray_table, make_client
):
    server = TableServer(dataclasses.replace(gray_table, gray_rules=(GrayRule(tenants=["acme"]),)))
    try:
        client = make_client(
            server.url, wait_s=0.5, unreachable_after_s=1.5, backoff_initial_s=0.05, backoff_max_s=0.2
        )
        assert client.wait_for_table(has_revision(1), timeout_s=3)
    finally:
        server.stop()

    # Right after the loss the last table still rules, so traces keep their versions ...
    assert client.choose("trace-1", tenant="acme") == CANARY
    assert client.table.revision == 1
    # ... and once the server has been silent for unreachable_after_s, everything goes to its stable.
    assert wait_until(lambda: not client.fresh, timeout_s=5)
    assert client.choose("trace-1", tenant="acme") == STABLE
    assert {client.choose(f"trace-{n}") for n in range(2_000)} == {STABLE}
    assert client.table.revision == 1 and client.last_error is not None


def test_malformed_table_from_the_server_is_ignored_and_the_last_table_kept(table_server, make_client):
    client = make_client(table_server.url, wait_s=20, backoff_initial_s=0.05, backoff_max_s=0.2)
    client.wait_for_table(has_revision(1), timeout_s=3)
    table_server.publish_raw(b'{"schema": 1, "canary_weight": 500}')
    assert wait_until(lambda: client.last_error is not None, timeout_s=3)
    assert "RoutingTableError" in client.last_error
    assert client.table.revision == 1 and client.fresh


def test_table_for_another_service_is_refused(gray_table, make_client):
    server = TableServer(dataclasses.replace(gray_table, service="agent-planner"))
    try:
        client = make_client(server.url, service="agent-infer", backoff_initial_s=0.05, backoff_max_s=0.2)
        assert wait_until(lambda: client.last_error is not None, timeout_s=3)
        assert "service: table is for 'agent-planner', this client routes 'agent-infer'" in client.last_error
        assert client.choose("trace-1") == "v-configured"
    finally:
        client.close()
        server.stop()


def test_blue_green_cut_over_and_switch_back_reach_the_scheduler(table_server, gray_table, make_client):
    client = make_client(table_server.url, wait_s=20)
    client.wait_for_table(has_revision(1), timeout_s=3)
    ids = [f"trace-{n}" for n in range(2_000)]

    table_server.publish(dataclasses.replace(gray_table.cut_over(), revision=2))
    client.wait_for_table(has_revision(2), timeout_s=3)
    assert {client.choose(i, tenant="acme") for i in ids} == {CANARY}

    table_server.publish(dataclasses.replace(gray_table.cut_over().switch_back(), revision=3))
    client.wait_for_table(has_revision(3), timeout_s=3)
    assert {client.choose(i, tenant="acme") for i in ids} == {STABLE}


def test_close_stops_the_thread_even_during_a_long_poll(table_server, make_client):
    client = make_client(table_server.url, wait_s=20)
    client.wait_for_table(has_revision(1), timeout_s=3)
    assert table_server.wait_until_client_waiting()
    started = time.monotonic()
    client.close(timeout_s=3)
    assert not client.running
    assert time.monotonic() - started < 3  # did not sit out the 20 s long-poll


def test_static_client_without_url_follows_its_initial_table_and_starts_no_thread(gray_table):
    client = RoutingClient(None, initial_table=dataclasses.replace(gray_table, canary_weight=100))
    assert client.choose("trace-1") == CANARY and client.fresh and not client.running
    client.close()


def test_unreachable_limit_shorter_than_the_long_poll_is_refused():
    with pytest.raises(ValueError, match="unreachable_after_s: must be at least wait_s \\+ 1"):
        RoutingClient("http://127.0.0.1:9/x", default_stable="v1", wait_s=25, unreachable_after_s=10)
    with pytest.raises(ValueError, match="default_stable: required"):
        RoutingClient("http://127.0.0.1:9/x")


def test_initial_table_is_only_trusted_for_its_stable_until_the_server_confirms(gray_table, make_client):
    url = f"http://127.0.0.1:{free_loopback_port()}/x"
    cached = dataclasses.replace(gray_table, canary_weight=100)
    client = make_client(url, initial_table=cached, backoff_initial_s=0.05, backoff_max_s=0.2)
    assert client.choose("trace-1") == STABLE
    assert isinstance(client.table, RoutingTable)
