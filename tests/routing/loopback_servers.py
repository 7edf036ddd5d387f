"""Loopback HTTP servers that play Rollgate's side of the routing protocol for the client tests.

They implement the documented protocol (ETag, If-None-Match, ``?wait=`` long-poll, 304) with
the standard library only, so the real client code is exercised over real sockets.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rollgate_client import RoutingTable, batch_response, validate_batch

MAX_SERVER_WAIT_S = 30.0


def wait_until(condition, timeout_s: float, interval_s: float = 0.02) -> bool:
    """Poll ``condition`` until it is true or the timeout passes (bounded, for background effects)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def free_loopback_port() -> int:
    """A port nobody listens on (bound and released), for 'server is down' cases."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _TrackingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        self.open_connections: set[socket.socket] = set()
        self.connections_accepted = 0
        self.connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def handle_error(self, request, client_address) -> None:
        # Connections cut on purpose (drop_open_connections, client close) are expected here.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def drop_open_connections(self) -> None:
        # Keep-alive connections outlive shutdown(); cut them so a stopped server is really gone.
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real deployment behind a proxy would

    def setup(self):
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)
            self.server.connections_accepted += 1

    def finish(self):
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):  # noqa: A002 - keep test output clean
        pass

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class TableServer:
    """Serves one routing table with ETag and long-poll; ``publish`` changes it."""

    def __init__(self, table: RoutingTable, *, keep_alive: bool = True) -> None:
        self.keep_alive = keep_alive
        self._changed = threading.Condition()
        self._table = table
        self._raw_body: bytes | None = None
        self._stopping = False
        self.waiting_requests = 0
        self.statuses: list[int] = []
        self.if_none_match: list[str | None] = []
        self.httpd = _TrackingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/api/routing/{self._table.service}/{self._table.environment}"

    def publish(self, table: RoutingTable) -> None:
        with self._changed:
            self._table = table
            self._raw_body = None
            self._changed.notify_all()

    def publish_raw(self, body: bytes) -> None:
        """Serve bytes that are not a valid table (a broken deploy of the server)."""
        with self._changed:
            self._raw_body = body
            self._changed.notify_all()

    def wait_until_client_waiting(self, timeout_s: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.waiting_requests == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.drop_open_connections()
        self._thread.join(5)

    def _current(self) -> tuple[str, bytes]:
        if self._raw_body is not None:
            return '"raw"', self._raw_body
        return self._table.etag, self._table.to_json().encode()

    def _answer_get(self, handler: _QuietHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        wait_s = min(float(query.get("wait", ["0"])[0]), MAX_SERVER_WAIT_S)
        client_etag = handler.headers.get("If-None-Match")
        deadline = time.monotonic() + wait_s
        with self._changed:
            self.if_none_match.append(client_etag)
            etag, body = self._current()
            self.waiting_requests += 1
            self._changed.notify_all()
            try:
                while etag == client_etag and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                    etag, body = self._current()
            finally:
                self.waiting_requests -= 1
            status = 304 if etag == client_etag else 200
            self.statuses.append(status)
        if status == 304:
            handler.send_body(304, b"", {"ETag": etag})
        else:
            handler.send_body(200, body, {"ETag": etag, "Content-Type": "application/json"})

    def _handler_class(self):
        server = self

        class Handler(_QuietHandler):
            # HTTP/1.0 closes the connection after every answer, like some WSGI servers do.
            protocol_version = "HTTP/1.1" if server.keep_alive else "HTTP/1.0"

            def do_GET(self):
                server._answer_get(self)

        return Handler


class ResultsServer:
    """Accepts trace-result batches the way the Rollgate endpoint is meant to: partial batches."""

    def __init__(self, *, fail_with_status: int | None = None) -> None:
        self.batches: list[list] = []
        self.fail_with_status = fail_with_status
        self.httpd = _TrackingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/api/trace-results"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.drop_open_connections()
        self._thread.join(5)

    def _handler_class(self):
        server = self

        class Handler(_QuietHandler):
            def do_POST(self):
                items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.batches.append(items)
                if server.fail_with_status:
                    self.send_body(server.fail_with_status, b"unavailable")
                    return
                valid, errors = validate_batch(items)
                body = json.dumps(batch_response(valid, errors)).encode()
                self.send_body(200, body, {"Content-Type": "application/json"})

        return Handler
