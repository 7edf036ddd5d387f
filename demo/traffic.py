"""Demo traffic: a scheduler that routes traces with rollgate_client and reports the results back.

    python -m demo.traffic --rollgate http://127.0.0.1:8000 --service agent-infer --env staging --rate 50

For each trace: a fresh trace_id, ``RoutingClient.choose`` (trace_id hashed against the gray weight of the routing
table at ``/api/routing/<service>/<env>/``; everything to the stable version while there is no table), a POST to
the chosen version's local agent (ports from the local target's state file), then the result (with the agent's LLM
quality fields: eval score, tool calls and errors, steps, time to first token, tokens in/out, model) goes into a batch
POSTed to ``/api/traces/results?service=<service>&environment=<env>`` every second (contract:
docs/routing-client.md). Rollgate takes results only with an agent token: ``ROLLGATE_AGENT_TOKEN`` (or the file
named by ``ROLLGATE_AGENT_TOKEN_FILE``; ``manage.py routing_agent_token create`` makes one) is sent as
``Authorization: Bearer rgat_...`` on the table and the results; a person's API token in ``ROLLGATE_TOKEN`` is
sent as ``Authorization: Token ...`` and can only read the table. The rate is bounded; at most
``--workers`` traces are in flight, and a tick that finds them all busy is skipped and counted, never queued.
SIGINT/SIGTERM stop it: no new traces, in-flight ones finish (bounded by their timeout), the last batch is sent.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import os
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping

from rollgate_client import ResultsPostError, RoutingClient, RoutingTable, post_results
from rollgate_client.results import MAX_BATCH_SIZE, MAX_MODEL_LENGTH, QUALITY_FIELDS

logger = logging.getLogger("demo.traffic")

DEFAULT_STATE_DIR = Path(__file__).resolve().parents[1] / "var" / "local-target"
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
REGIONS = ("cn-bj", "cn-sh", "eu-west")


class LocalEndpoints:
    """version -> base URL of its agent, read from the local target's state file (re-read at most every 0.5 s)."""

    def __init__(self, service: str, env: str, state_dir: Path | str = DEFAULT_STATE_DIR):
        self.service, self.env, self.path = service, env, Path(state_dir) / "state.json"
        self._lock = threading.Lock()
        self._checked = 0.0
        self._mtime: float | None = None
        self._urls: dict[str, str] = {}
        self._stable: str | None = None

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._checked < 0.5:
                return
            self._checked = time.monotonic()
            try:
                mtime = self.path.stat().st_mtime
                if mtime == self._mtime:
                    return
                data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                return  # keep the last good view; the file is replaced atomically, so this is rare
            self._mtime = mtime
            mine = [p for p in data.get("processes", []) if p["service"] == self.service and p["env"] == self.env]
            self._urls = {p["version"]: f"http://127.0.0.1:{p['port']}" for p in mine}
            self._stable = next((p["version"] for p in mine if p["track"] == "stable"), None)

    def urls(self) -> dict[str, str]:
        self._refresh()
        return self._urls

    def stable(self) -> str | None:
        self._refresh()
        return self._stable


@dataclasses.dataclass
class TrafficStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    rerouted: int = 0  # chosen version had no running agent; sent to the stable version instead
    skipped: int = 0  # ticks skipped because every worker was busy
    unroutable: int = 0  # no agent at all for the chosen version or the stable one
    posted: int = 0
    rejected: int = 0
    post_failures: int = 0
    by_version: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def line(self) -> str:
        versions = ", ".join(f"{v} {n}" for v, n in sorted(self.by_version.items())) or "none"
        rate = 100.0 * self.ok / self.sent if self.sent else 0.0
        return (f"sent {self.sent} ({versions}) ok {rate:.1f} % posted {self.posted} rejected {self.rejected} "
                f"post failures {self.post_failures} rerouted {self.rerouted} skipped {self.skipped}")


class TrafficGenerator:
    def __init__(
        self,
        client: RoutingClient,
        *,
        endpoints: Callable[[], Mapping[str, str]],
        stable: Callable[[], str | None] = lambda: None,
        results_url: str | None,
        rate: float = 50.0,
        workers: int = 32,
        request_timeout_s: float = 5.0,
        flush_interval_s: float = 1.0,
        batch_size: int = 500,
        max_pending: int = 20_000,
        headers: Mapping[str, str] | None = None,
        seed: int | None = None,
    ):
        if not 0 < rate <= 1000:
            raise ValueError(f"rate: must be between 0 and 1000 traces per second, got {rate}")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size: must be 1..{MAX_BATCH_SIZE}, got {batch_size}")
        self.client = client
        self.endpoints = endpoints
        self.stable = stable
        self.results_url = results_url
        self.rate = rate
        self.workers = workers
        self.request_timeout_s = request_timeout_s
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.headers = dict(headers or {})
        self.stats = TrafficStats()
        self._pending: collections.deque = collections.deque(maxlen=max_pending)
        self._stats_lock = threading.Lock()
        self._in_flight = threading.Semaphore(workers)
        self._random = random.Random(seed)
        self._run_id = f"{os.getpid():x}{self._random.getrandbits(24):06x}"
        self._last_post_warning = 0.0

    # -- one trace ---------------------------------------------------------------------------------------------

    def _trace(self, number: int) -> None:
        try:
            trace_id = f"tr-{self._run_id}-{number}"
            tenant = TENANTS[number % len(TENANTS)]
            region = REGIONS[number % len(REGIONS)]
            version = self.client.choose(trace_id, tenant=tenant, region=region)
            urls = self.endpoints()
            url = urls.get(version)
            rerouted = False
            if url is None:
                fallback = self.stable() or (self.client.table.stable_version if self.client.table else None)
                url, version, rerouted = urls.get(fallback or ""), fallback, True
            if url is None:
                with self._stats_lock:
                    self.stats.unroutable += 1
                return
            result = self._call(url, trace_id, version, tenant)
            with self._stats_lock:
                self.stats.sent += 1
                self.stats.rerouted += rerouted
                self.stats.by_version[version] += 1
                if result["ok"]:
                    self.stats.ok += 1
                else:
                    self.stats.failed += 1
            if self.results_url:
                self._pending.append(result)
        finally:
            self._in_flight.release()

    def _call(self, url: str, trace_id: str, version: str, tenant: str) -> dict:
        body = json.dumps({"trace_id": trace_id, "tenant": tenant}).encode()
        request = urllib.request.Request(url + "/run", data=body, headers={"Content-Type": "application/json"})
        started = time.monotonic()
        answer: dict = {}
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout_s) as response:
                answer = json.loads(response.read() or b"{}")
                ok = bool(answer.get("ok", True))
        except urllib.error.HTTPError as error:
            try:
                answer = json.loads(error.read() or b"{}")
            except ValueError:
                answer = {}
            ok = False
        except (OSError, ValueError):
            ok = False  # connection refused or reset (a crashing agent), timeout, garbage
        latency_ms = (time.monotonic() - started) * 1000
        callback_ok = answer.get("callback_ok")
        tokens = answer.get("tokens")
        return {
            **quality_fields(answer),
            "trace_id": trace_id,
            "agent_id": str(answer.get("agent_id") or f"{version}@{url.rsplit(':', 1)[-1]}")[:200],
            "version": version,
            "ok": ok,
            "latency_ms": round(latency_ms, 3),
            "callback_ok": callback_ok if isinstance(callback_ok, bool) else None,
            "tokens": tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else 0,
        }

    # -- results -----------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """POST what is pending, in batches. A failed batch is dropped (and counted): the demo keeps going."""
        while self._pending:
            batch = []
            while self._pending and len(batch) < self.batch_size:
                batch.append(self._pending.popleft())
            try:
                answer = post_results(self.results_url, batch, headers=self.headers)
            except ResultsPostError as error:
                with self._stats_lock:
                    self.stats.post_failures += 1
                if time.monotonic() - self._last_post_warning > 30:
                    self._last_post_warning = time.monotonic()
                    logger.warning("trace results not accepted (%d dropped): %s", len(batch), error)
                return
            with self._stats_lock:
                self.stats.posted += int(answer.get("accepted", 0))
                self.stats.rejected += int(answer.get("rejected", 0))

    def _flusher(self, stop: threading.Event) -> None:
        while not stop.wait(self.flush_interval_s):
            self.flush()

    # -- the loop ----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, duration_s: float | None = None, max_traces: int | None = None,
            report_every_s: float | None = None) -> TrafficStats:
        """Send traces at ``rate`` until ``stop`` is set, ``duration_s`` passes or ``max_traces`` were started."""
        flusher_stop = threading.Event()
        flusher = None
        if self.results_url:
            flusher = threading.Thread(target=self._flusher, args=(flusher_stop,), name="traffic-results",
                                       daemon=True)
            flusher.start()
        interval = 1.0 / self.rate
        started = next_at = time.monotonic()
        last_report = started
        number = 0
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="trace") as pool:
            while not stop.is_set():
                now = time.monotonic()
                if duration_s is not None and now - started >= duration_s:
                    break
                if max_traces is not None and number >= max_traces:
                    break
                if next_at > now:
                    if stop.wait(next_at - now):
                        break
                next_at += interval
                if next_at < time.monotonic() - 1.0:
                    next_at = time.monotonic()  # fell behind (a paused machine): do not burst to catch up
                if not self._in_flight.acquire(blocking=False):
                    with self._stats_lock:
                        self.stats.skipped += 1
                    continue
                number += 1
                pool.submit(self._trace, number)
                if report_every_s and now - last_report >= report_every_s:
                    last_report = now
                    logger.info("%s", self.stats.line())
        # The pool waited for in-flight traces (each bounded by request_timeout_s); send the rest.
        flusher_stop.set()
        if flusher is not None:
            flusher.join()
            self.flush()
        return self.stats


def quality_fields(answer: Mapping) -> dict:
    """The LLM quality fields the agent answered with (eval score, tool calls, steps, time to first token, tokens in
    and out, model), passed on to Rollgate as they are; a value of the wrong type is left out rather than sent, so
    a broken agent cannot make Rollgate refuse the whole trace."""
    fields = {}
    for name, (kind, upper) in QUALITY_FIELDS.items():
        value = answer.get(name)
        if isinstance(value, bool) or not isinstance(value, int if kind == "count" else (int, float)):
            continue
        if 0 <= value <= upper:
            fields[name] = value
    model = answer.get("model")
    if isinstance(model, str) and 0 < len(model) <= MAX_MODEL_LENGTH and "\x00" not in model:
        fields["model"] = model
    if "tool_errors" in fields and fields["tool_errors"] > fields.get("tool_calls", -1):
        del fields["tool_errors"]
    return fields


def results_url_for(base: str, service: str, env: str) -> str:
    query = urllib.parse.urlencode({"service": service, "environment": env})
    return f"{base.rstrip('/')}/api/traces/results?{query}"


def auth_headers(environ: Mapping[str, str]) -> dict[str, str]:
    """An agent token (Bearer; may post results) from ROLLGATE_AGENT_TOKEN[_FILE], else a person's API token."""
    token = environ.get("ROLLGATE_AGENT_TOKEN", "")
    if not token and environ.get("ROLLGATE_AGENT_TOKEN_FILE"):
        token = Path(environ["ROLLGATE_AGENT_TOKEN_FILE"]).read_text().strip()
    if token:
        return {"Authorization": f"Bearer {token}"}
    person = environ.get("ROLLGATE_TOKEN", "")
    return {"Authorization": f"Token {person}"} if person else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.traffic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollgate", default=os.environ.get("ROLLGATE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--service", default="agent-infer")
    parser.add_argument("--env", default="staging")
    parser.add_argument("--rate", type=float, default=50.0, help="traces per second (default 50)")
    parser.add_argument("--workers", type=int, default=32, help="most traces in flight")
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="the local target's state directory")
    parser.add_argument("--default-stable", default=None,
                        help="stable version before any routing table arrives (default: the local stable process)")
    parser.add_argument("--table-url", default=None, help="default: <rollgate>/api/routing/<service>/<env>/")
    parser.add_argument("--results-url", default=None,
                        help="default: <rollgate>/api/traces/results?service=<service>&environment=<env>")
    parser.add_argument("--wait-for-stable", type=float, default=30.0,
                        help="seconds to wait for a stable agent to appear (0: until one does or we are stopped; "
                             "`make run` starts traffic before the story has deployed v1.0.0)")
    parser.add_argument("--no-results", action="store_true", help="do not post trace results")
    parser.add_argument("--canary", default=None,
                        help="route by a static table with this canary instead of Rollgate's (no Rollgate needed)")
    parser.add_argument("--weight", type=float, default=0.0, help="the static table's canary weight, 0..100")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--report-every", type=float, default=10.0, help="seconds between status lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s traffic: %(message)s", stream=sys.stdout)

    base = args.rollgate.rstrip("/")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    endpoints = LocalEndpoints(args.service, args.env, args.state_dir)
    default_stable = args.default_stable
    deadline = time.monotonic() + args.wait_for_stable if args.wait_for_stable > 0 else None
    if default_stable is None and endpoints.stable() is None:
        logger.info("waiting for a stable agent of %s in %s (the local target starts it when a release goes live)",
                    args.service, args.env)
    while default_stable is None:
        default_stable = endpoints.stable()
        if default_stable is None:
            if stop.is_set():
                return 0
            if deadline is not None and time.monotonic() > deadline:
                print(f"traffic: no stable agent of {args.service} in {args.env} under {args.state_dir} after "
                      f"{args.wait_for_stable:g} s; start one or pass --default-stable", file=sys.stderr)
                return 2
            stop.wait(0.5)
    headers = auth_headers(os.environ)
    if args.canary:
        table = RoutingTable(service=args.service, environment=args.env, stable_version=default_stable,
                             canary_version=args.canary, canary_weight=args.weight)
        client = RoutingClient(None, initial_table=table)
    else:
        client = RoutingClient(args.table_url or f"{base}/api/routing/{args.service}/{args.env}/",
                               default_stable=default_stable, service=args.service, environment=args.env,
                               request_headers=headers)
    generator = TrafficGenerator(
        client, endpoints=endpoints.urls, stable=endpoints.stable, rate=args.rate, workers=args.workers,
        results_url=None if args.no_results else (args.results_url or results_url_for(base, args.service, args.env)),
        headers=headers,
    )
    if not args.no_results and "Bearer" not in headers.get("Authorization", ""):
        logger.warning("no agent token (ROLLGATE_AGENT_TOKEN or ROLLGATE_AGENT_TOKEN_FILE): Rollgate will refuse "
                       "the trace results")
    logger.info("%s %s: %g traces/s, stable %s until the routing table says otherwise",
                args.service, args.env, args.rate, default_stable)
    try:
        stats = generator.run(stop, duration_s=args.duration, report_every_s=args.report_every)
    finally:
        client.close()
    logger.info("stopped: %s", stats.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
