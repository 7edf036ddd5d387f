"""A scheduler's routing client: keeps the table fresh in the background, answers choose().

Freshness protocol (what the server must do):

* ``GET <table_url>?wait=<seconds>`` with ``If-None-Match: <etag of the table the client has>``.
* If the server's table has another ETag, answer at once: ``200``, body = ``RoutingTable.to_json()``,
  header ``ETag: <etag>``.  Otherwise hold the request until the table changes (then 200) or the
  wait elapses (then ``304 Not Modified``).  A server that ignores ``wait`` still works: the client
  then polls every ``min_request_interval_s``.

When the table cannot be had, ``choose`` answers the stable version:

* never had a table: ``default_stable`` (the version the scheduler was configured with);
* had a table but no answer from the server for ``unreachable_after_s``: the last table's stable
  (its blocked versions still apply).  Until then the last table is followed in full, so a
  short control-plane blip does not move canary traces back and forth between versions.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import threading
import time
import urllib.parse
from typing import Any, Callable, Iterable, Mapping

from rollgate_client.results import MAX_BATCH_SIZE, TraceResult, post_results
from rollgate_client.router import Router
from rollgate_client.table import RoutingTable

logger = logging.getLogger("rollgate_client")

_monotonic = time.monotonic


class TableFetchError(RuntimeError):
    """The server answered, but not with a usable table."""


class _ReadTimeoutMixin:
    """Connect with a short timeout, then wait for a long-poll answer with a longer one."""

    read_timeout_s: float
    closing: threading.Event

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        # close() may have run while we were connecting, when there was no socket to shut down yet.
        if self.closing.is_set():
            self.close()  # type: ignore[attr-defined]
            raise TableFetchError("client is closing")
        self.sock.settimeout(self.read_timeout_s)  # type: ignore[attr-defined]


class _LongPollHTTPConnection(_ReadTimeoutMixin, http.client.HTTPConnection):
    pass


class _LongPollHTTPSConnection(_ReadTimeoutMixin, http.client.HTTPSConnection):
    pass


def _default_table(stable_version: str, service: str | None, environment: str | None) -> RoutingTable:
    return RoutingTable(
        service=service or "unconfigured",
        environment=environment or "unconfigured",
        stable_version=stable_version,
    )


class RoutingClient:
    """Thread-safe; one per (service, environment).  ``close()`` stops the background thread."""

    def __init__(
        self,
        table_url: str | None,
        *,
        default_stable: str | None = None,
        service: str | None = None,
        environment: str | None = None,
        initial_table: RoutingTable | None = None,
        results_url: str | None = None,
        wait_s: float = 25.0,
        unreachable_after_s: float = 60.0,
        min_request_interval_s: float = 0.25,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        request_headers: Mapping[str, str] | None = None,
        start: bool = True,
    ) -> None:
        if default_stable is None and initial_table is None:
            raise ValueError("default_stable: required when no initial_table is given")
        if unreachable_after_s < wait_s + 1:
            raise ValueError(
                f"unreachable_after_s: must be at least wait_s + 1 ({wait_s + 1}), got {unreachable_after_s};"
                " a long-poll answered at the end of its wait must not count as a lost server"
            )
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("backoff_initial_s: must be > 0 and <= backoff_max_s")
        self._service = service
        self._environment = environment
        self._results_url = results_url
        self._wait_s = wait_s
        self._unreachable_after_s = unreachable_after_s
        self._min_request_interval_s = min_request_interval_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._connect_timeout_s = connect_timeout_s
        self._request_headers = dict(request_headers or {})

        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._connection_lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._thread: threading.Thread | None = None
        self._table: RoutingTable | None = initial_table
        self._etag: str | None = None
        # For the scheduler's own monitoring: the last failure (None once the server answers
        # again) and how many polls failed since start.
        self.last_error: str | None = None
        self.failed_polls = 0

        if initial_table is not None:
            self._check_identity(initial_table)
            self._router = Router(initial_table)
            self._fallback_router = Router(initial_table.stable_only())
        else:
            default = Router(_default_table(default_stable, service, environment))  # type: ignore[arg-type]
            self._router = self._fallback_router = default
        # A static client (no URL) trusts its table forever; a connected one only after the
        # server confirmed it.
        self._fresh_until = float("inf") if table_url is None else float("-inf")

        self._url = urllib.parse.urlsplit(table_url) if table_url else None
        if self._url is not None:
            if self._url.scheme not in ("http", "https"):
                raise ValueError(f"table_url: must be http or https, got {self._url.scheme!r}")
            if start:
                self.start()

    # --- the hot path -----------------------------------------------------------------------

    def choose(
        self,
        trace_id: str | bytes,
        tenant: str | None = None,
        region: str | None = None,
        headers: Mapping[str, str] | None = None,
        trace_type: str | None = None,
        feature_flags: Iterable[str] | Mapping[str, Any] | None = None,
    ) -> str:
        """The version that serves this trace.  See ``rollgate_client.router`` for the rules."""
        if _monotonic() < self._fresh_until:
            return self._router.choose(trace_id, tenant, region, headers, trace_type, feature_flags)
        return self._fallback_router.choose(trace_id, tenant, region, headers, trace_type, feature_flags)

    # --- state ------------------------------------------------------------------------------

    @property
    def table(self) -> RoutingTable | None:
        """The last table received (or the initial one); None before any."""
        return self._table

    @property
    def fresh(self) -> bool:
        """True while choose() follows the full table rather than the stable fallback."""
        return _monotonic() < self._fresh_until

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_for_table(
        self, predicate: Callable[[RoutingTable], bool], timeout_s: float
    ) -> RoutingTable | None:
        """Block until a received table satisfies ``predicate``; None if the timeout passes."""
        deadline = _monotonic() + timeout_s
        with self._changed:
            while True:
                table = self._table
                if table is not None and self._etag is not None and predicate(table):
                    return table
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._url is None or self.running:
            return
        self._closing.clear()
        self._thread = threading.Thread(target=self._run, name="rollgate-routing-table", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the background thread, interrupting a long-poll in flight."""
        self._closing.set()
        self._drop_connection()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def __enter__(self) -> RoutingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- results ----------------------------------------------------------------------------

    def post_results(
        self, items: Iterable[TraceResult | Mapping[str, Any]], *, max_batch_size: int = MAX_BATCH_SIZE
    ) -> dict[str, Any]:
        """POST one batch of trace results to ``results_url``; returns the server's answer."""
        if not self._results_url:
            raise ValueError("results_url: not configured on this RoutingClient")
        return post_results(
            self._results_url, items, max_batch_size=max_batch_size, headers=self._request_headers
        )

    # --- background loop --------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            started = _monotonic()
            try:
                self._poll_once()
            except Exception as error:  # noqa: BLE001 - any failure must back off, never kill the loop
                self._drop_connection()
                if self._closing.is_set():
                    break
                failures += 1
                self.failed_polls += 1
                self.last_error = f"{type(error).__name__}: {error}"
                if failures == 1:
                    logger.warning("routing table %s unavailable: %s", self._where(), self.last_error)
                delay = min(self._backoff_max_s, self._backoff_initial_s * 2 ** min(failures - 1, 20))
                # Jitter, so schedulers that lost the server together do not return together.
                self._closing.wait(delay * (0.5 + random.random() / 2))
                continue
            if failures:
                logger.info("routing table %s reachable again after %d failures", self._where(), failures)
                failures = 0
                self.last_error = None
            rest = self._min_request_interval_s - (_monotonic() - started)
            if rest > 0:
                self._closing.wait(rest)
        self._drop_connection()

    def _poll_once(self) -> None:
        headers = {"Accept": "application/json", **self._request_headers}
        if self._etag:
            headers["If-None-Match"] = self._etag
        connection = self._open_connection()
        reused = connection.sock is not None
        try:
            connection.request("GET", self._request_path(), headers=headers)
            response = connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused or self._closing.is_set():
                raise
            # The server or a proxy closed the idle keep-alive connection: not an outage, so
            # try once on a new connection before counting a failure.
            self._drop_connection()
            connection = self._open_connection()
            connection.request("GET", self._request_path(), headers=headers)
            response = connection.getresponse()
        body = response.read()
        if response.status == 304:
            self._mark_contact()
            return
        if response.status != 200:
            raise TableFetchError(f"HTTP {response.status}: {body[:200].decode(errors='replace')}")
        table = RoutingTable.from_json(body)
        self._check_identity(table)
        self._install(table, response.getheader("ETag") or table.etag)

    def _install(self, table: RoutingTable, etag: str) -> None:
        router = Router(table)
        fallback = Router(table.stable_only())
        with self._changed:
            # Fallback first: a reader that sees the new freshness must not see an old fallback.
            self._fallback_router = fallback
            self._router = router
            self._table = table
            self._etag = etag
            self._mark_contact()
            self._changed.notify_all()

    def _mark_contact(self) -> None:
        self._fresh_until = _monotonic() + self._unreachable_after_s

    def _check_identity(self, table: RoutingTable) -> None:
        for field, expected in (("service", self._service), ("environment", self._environment)):
            if expected is not None and getattr(table, field) != expected:
                raise TableFetchError(
                    f"{field}: table is for {getattr(table, field)!r}, this client routes {expected!r}"
                )

    def _request_path(self) -> str:
        assert self._url is not None
        wait = f"{self._wait_s:g}"
        query = f"{self._url.query}&wait={wait}" if self._url.query else f"wait={wait}"
        return f"{self._url.path or '/'}?{query}"

    def _where(self) -> str:
        # Host and path only: a query string may carry a token.
        assert self._url is not None
        return f"{self._url.netloc}{self._url.path}"

    def _open_connection(self) -> http.client.HTTPConnection:
        with self._connection_lock:
            if self._closing.is_set():
                raise TableFetchError("client is closing")
            if self._connection is None:
                assert self._url is not None
                connection_class = (
                    _LongPollHTTPSConnection if self._url.scheme == "https" else _LongPollHTTPConnection
                )
                connection = connection_class(self._url.netloc, timeout=self._connect_timeout_s)
                connection.read_timeout_s = self._wait_s + self._connect_timeout_s
                connection.closing = self._closing
                self._connection = connection
            return self._connection

    def _drop_connection(self) -> None:
        with self._connection_lock:
            connection, self._connection = self._connection, None
        if connection is None:
            return
        sock = connection.sock
        if sock is not None:
            try:
                # shutdown() wakes a thread blocked in recv() on this socket; close() alone may not.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        connection.close()
