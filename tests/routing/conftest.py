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


# --- server side (routing app) --------------------------------------------------------------------------------

import socket as _socket  # noqa: E402
import threading as _threading  # noqa: E402
import time as _time  # noqa: E402


@pytest.fixture
def agent_key(environments, service):
    """An agent token for agent-infer in staging (the environment the release fixtures use)."""
    from routing import auth

    _, key = auth.token_create(name="scheduler-test", environment=environments["staging"], service=service)
    return key


@pytest.fixture
def clean_trace_metrics(settings):
    import redis

    from routing import metrics

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(metrics.HASH_KEY, metrics.SEEN_KEY)
    yield
    client.delete(metrics.HASH_KEY, metrics.SEEN_KEY)
    client.close()


class ThreadedAsgiServer:
    """uvicorn serving config.asgi on 127.0.0.1:<free port> in a thread (same process, same test database)."""

    def __init__(self):
        import uvicorn

        from config.asgi import application

        with _socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = _threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.thread.start()
        deadline = _time.monotonic() + 10
        while not self.server.started:
            if _time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            _time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def asgi_server(transactional_db):
    from routing import async_views

    # The results view caches (service, environment) rows and known versions for a few seconds; a previous test's
    # rows are gone (flushed), so a cached one would make this test's versions look unknown.
    async_views._scope_cache.clear()
    async_views._versions_cache.clear()
    server = ThreadedAsgiServer()
    yield server
    server.stop()
