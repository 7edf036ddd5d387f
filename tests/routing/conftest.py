import pytest

from rollgate_client import RoutingTable

from .loopback_servers import ResultsServer, TableServer


@pytest.fixture
def gray_table() -> RoutingTable:
    return RoutingTable(
        service="agent-infer",
        environment="prod",
        revision=1,
        stable_version="v3.3.0",
        canary_version="v3.3.1",
        canary_weight=30,
    )


@pytest.fixture
def table_server(gray_table):
    server = TableServer(gray_table)
    yield server
    server.stop()


@pytest.fixture
def results_server():
    server = ResultsServer()
    yield server
    server.stop()
