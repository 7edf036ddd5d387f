"""The demo agent: an HTTP service that simulates LLM traces and exports the SLA metric contract.

Endpoints (127.0.0.1 by default):

  POST /run      {"trace_id": "...", "tenant"?: "..."} -> 200 {trace_id, agent_id, version, ok, latency_ms,
                 callback_ok, tokens, model, eval_score, tool_calls, tool_errors, steps, ttft_ms, tokens_in,
                 tokens_out} (the rollgate_client TraceResult shape with its LLM quality fields; no cost: Rollgate
                 prices the model's tokens), or 500 with the same body, ok=false and eval_score null (no answer to
                 score) when the simulated trace fails; 400 naming the field for bad input.
  GET  /healthz  200 {"status": "ok", ...}, or 503 when the profile says the version is broken.
  PUT  /behaviour {"profile": "erroring"} switches this process to another profile of versions.yaml at runtime
                 (the rollback benchmark turns a healthy canary bad this way); 200 with the new profile, 400
                 naming the field for an unknown profile. Loopback only, like every endpoint here; a crash
                 restart goes back to the profile the process was started with.
  GET  /metrics  Prometheus text format, the contract of sla/catalog.py: agent_requests_total{outcome},
                 agent_request_latency_seconds (fixed buckets, identical across versions), agent_callback_total
                 {outcome}, agent_tokens_total, agent_log_errors_total, agent_crashes_total,
                 process_resident_memory_bytes; every series labelled service, env, version.

Every series is created at zero when the process starts, so the gate's window (each counter's rise) sees the
first failure.
`agent_crashes_total` starts at AGENT_CRASHES, which the supervisor (supervise.py) sets to the number of
earlier abnormal exits, so the counter keeps growing across restarts the way a pod's restart count does.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .behaviour import Behaviour, BehaviourError, behaviour_for

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3,
                   0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
RELEASE_LABELS = ("service", "env", "version")
MAX_BODY_BYTES = 64 * 1024
MAX_TRACE_ID = 200

logger = logging.getLogger("demo.agent")
# The *_created series double the scrape size and no SLA query reads them.
disable_created_metrics()


class _ResidentMemory:
    """process_resident_memory_bytes with the release labels (the default process collector has none)."""

    def __init__(self, labels: tuple[str, str, str]):
        self._labels = labels
        self._page = os.sysconf("SC_PAGE_SIZE")

    def collect(self):
        family = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                   labels=RELEASE_LABELS)
        try:
            with open("/proc/self/statm") as statm:
                family.add_metric(self._labels, int(statm.read().split()[1]) * self._page)
        except OSError:  # not Linux: leave the family empty rather than lie
            pass
        yield family


class _ErrorLogCounter(logging.Handler):
    """Counts ERROR-level log lines into agent_log_errors_total, as a log pipeline would."""

    def __init__(self, counter):
        super().__init__(level=logging.ERROR)
        self._counter = counter

    def emit(self, record: logging.LogRecord) -> None:
        self._counter.inc()


class AgentMetrics:
    def __init__(self, service: str, env: str, version: str, *, crashes_before: int = 0):
        labels = {"service": service, "env": env, "version": version}
        self.registry = CollectorRegistry(auto_describe=True)
        requests = Counter("agent_requests", "Traces handled, by outcome (ok or error).",
                           (*RELEASE_LABELS, "outcome"), registry=self.registry)
        callbacks = Counter("agent_callback", "Result callbacks to the output channel, by outcome.",
                            (*RELEASE_LABELS, "outcome"), registry=self.registry)
        self.requests_ok = requests.labels(outcome="ok", **labels)
        self.requests_error = requests.labels(outcome="error", **labels)
        self.callbacks_ok = callbacks.labels(outcome="ok", **labels)
        self.callbacks_error = callbacks.labels(outcome="error", **labels)
        self.latency = Histogram("agent_request_latency_seconds", "Trace latency in seconds.", RELEASE_LABELS,
                                 buckets=LATENCY_BUCKETS, registry=self.registry).labels(**labels)
        self.tokens = Counter("agent_tokens", "Model tokens consumed.", RELEASE_LABELS,
                              registry=self.registry).labels(**labels)
        self.log_errors = Counter("agent_log_errors", "ERROR-level log lines.", RELEASE_LABELS,
                                  registry=self.registry).labels(**labels)
        self.crashes = Counter("agent_crashes", "Abnormal exits of the agent process (restarts).", RELEASE_LABELS,
                               registry=self.registry).labels(**labels)
        self.crashes.inc(crashes_before)
        self.info = Gauge("agent_info", "The running agent's behaviour profile.", (*RELEASE_LABELS, "profile"),
                          registry=self.registry)
        self.registry.register(_ResidentMemory((service, env, version)))


class Agent:
    """The simulated work. Thread-safe; one per process."""

    def __init__(self, *, service: str, env: str, version: str, behaviour: Behaviour, crashes_before: int = 0,
                 seed: int | None = None):
        self.service, self.env, self.version, self.behaviour = service, env, version, behaviour
        self.agent_id = f"{service}-{version}-{os.getpid()}"
        self.metrics = AgentMetrics(service, env, version, crashes_before=crashes_before)
        self.metrics.info.labels(service, env, version, behaviour.profile).set(1)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._served = 0
        self._leak: list[bytearray] = []
        self._leaked_bytes = 0
        # A logger of its own, so several agents in one process (tests) each count only their own errors.
        self.log = logger.getChild(f"{version}.{id(self):x}")
        self._error_handler = _ErrorLogCounter(self.metrics.log_errors)
        self.log.addHandler(self._error_handler)

    def close(self) -> None:
        self.log.removeHandler(self._error_handler)

    def switch_behaviour(self, behaviour: Behaviour) -> None:
        """Behave as ``behaviour`` from the next trace on (a trace already running keeps its draw)."""
        with self._lock:
            self.metrics.info.labels(self.service, self.env, self.version, self.behaviour.profile).set(0)
            self.behaviour = behaviour
            self.metrics.info.labels(self.service, self.env, self.version, behaviour.profile).set(1)

    def _draw(self) -> tuple[float, bool, bool, int, bool, dict]:
        with self._lock:
            b = self.behaviour
            self._served += 1
            served = self._served
            rnd = self._random
            latency = b.latency_ms * (rnd.lognormvariate(0.0, b.latency_spread) if b.latency_spread else 1.0)
            ok = rnd.random() >= b.error_rate
            callback_ok = rnd.random() >= b.callback_error_rate
            tokens = max(1, int(rnd.gauss(b.tokens, b.tokens * 0.2))) if b.tokens else 0
            noisy = rnd.random() < b.log_error_rate
            quality = self._draw_quality(b, rnd, latency)
            if b.leak_kb_per_request and self._leaked_bytes < b.leak_max_mb * 1024 * 1024:
                chunk = bytearray(b.leak_kb_per_request * 1024)
                chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page so it counts as resident
                self._leak.append(chunk)
                self._leaked_bytes += len(chunk)
        if b.crash_after_requests is not None and served >= b.crash_after_requests:
            self.log.critical("crashing on trace %d as profile %r says", served, b.profile)
            logging.shutdown()
            os._exit(70)  # abrupt, like a segfault or OOM kill: no response, no cleanup
        return latency, ok, callback_ok, tokens, noisy, quality

    @staticmethod
    def _draw_quality(b: Behaviour, rnd: random.Random, latency_ms: float) -> dict:
        """The LLM quality fields of one trace: an evaluator's score, tool calls and their errors, loop steps, time
        to first token (within the trace's latency)."""
        calls = max(0, round(rnd.gauss(b.tool_calls, 1.0))) if b.tool_calls else 0
        return {
            "model": b.model,
            "eval_score": round(min(1.0, max(0.0, rnd.gauss(b.eval_score, b.eval_spread))), 3),
            "tool_calls": calls,
            "tool_errors": sum(rnd.random() < b.tool_error_rate for _ in range(calls)),
            "steps": calls + 1,
            "ttft_ms": round(min(latency_ms, b.ttft_ms * rnd.lognormvariate(0.0, 0.3)), 3),
        }

    def run(self, trace_id: str) -> dict:
        latency_ms, ok, callback_ok, tokens, noisy, quality = self._draw()
        time.sleep(latency_ms / 1000)
        m = self.metrics
        m.latency.observe(latency_ms / 1000)
        if ok:
            m.requests_ok.inc()
            m.tokens.inc(tokens)
            (m.callbacks_ok if callback_ok else m.callbacks_error).inc()
            if not callback_ok:
                self.log.warning("trace %s: result callback to the output channel failed", trace_id)
            if noisy:
                self.log.error("trace %s: tool call returned malformed JSON (recovered)", trace_id)
        else:
            m.requests_error.inc()
            tokens = tokens // 3
            m.tokens.inc(tokens)
            self.log.error("trace %s failed: simulated model error", trace_id)
        tokens_in = round(tokens * self.behaviour.input_share)
        return {
            "trace_id": trace_id,
            "agent_id": self.agent_id,
            "version": self.version,
            "ok": ok,
            "latency_ms": round(latency_ms, 3),
            "callback_ok": callback_ok if ok else None,
            "tokens": tokens,
            **quality,
            "eval_score": quality["eval_score"] if ok else None,  # a failed trace has no answer to score
            "tokens_in": tokens_in,
            "tokens_out": tokens - tokens_in,
        }


class _Handler(BaseHTTPRequestHandler):
    server: "AgentServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name; access logs would drown the demo
        pass

    def _send_json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):  # noqa: N802 - stdlib naming
        agent = self.server.agent
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            payload = generate_latest(agent.metrics.registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif path == "/healthz":
            healthy = agent.behaviour.healthy
            self._send_json(200 if healthy else 503, {
                "status": "ok" if healthy else "unhealthy", "service": agent.service, "env": agent.env,
                "version": agent.version, "profile": agent.behaviour.profile, "pid": os.getpid()})
        else:
            self._send_json(404, {"detail": f"no such path {path}; try POST /run, GET /healthz, GET /metrics"})

    def _read_json(self):
        """The JSON body, or None after an error answer was sent."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send_json(400, {"detail": "Content-Length: must be a whole number"})
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(413, {"detail": f"body: at most {MAX_BODY_BYTES} bytes"})
            return None
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._send_json(400, {"detail": "body: must be JSON"})
            return None

    def do_PUT(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path != "/behaviour":
            self._send_json(404, {"detail": f"no such path {path}; PUT /behaviour"})
            return
        body = self._read_json()
        if body is None:
            return
        agent = self.server.agent
        profile = body.get("profile") if isinstance(body, dict) else None
        if not isinstance(profile, str) or not profile:
            self._send_json(400, {"detail": "profile: required, the name of a profile in versions.yaml",
                                  "errors": {"profile": ["required"]}})
            return
        try:
            behaviour = behaviour_for(agent.version, config=self.server.config, profile=profile)
        except BehaviourError as error:
            self._send_json(400, {"detail": str(error), "errors": {"profile": [str(error)]}})
            return
        before = agent.behaviour.profile
        agent.switch_behaviour(behaviour)
        agent.log.warning("behaviour switched at runtime: profile %r -> %r", before, behaviour.profile)
        self._send_json(200, {"version": agent.version, "profile": behaviour.profile, "previous": before})

    def do_POST(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path != "/run":
            self._send_json(404, {"detail": f"no such path {path}; POST /run"})
            return
        body = self._read_json()
        if body is None:
            return
        trace_id = body.get("trace_id") if isinstance(body, dict) else None
        if not isinstance(trace_id, str) or not 0 < len(trace_id) <= MAX_TRACE_ID:
            self._send_json(400, {"detail": f"trace_id: required, a non-empty string of at most {MAX_TRACE_ID}"
                                            " characters", "errors": {"trace_id": ["invalid"]}})
            return
        result = self.server.agent.run(trace_id)
        self._send_json(200 if result["ok"] else 500, result)


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib's 5 resets connections when a scheduler sends a burst

    def __init__(self, agent: Agent, *, host: str = "127.0.0.1", port: int = 0, listen_fd: int | None = None,
                 config: dict | None = None):
        self.agent = agent
        self.config = config  # versions.yaml as loaded (None: the bundled one), for PUT /behaviour
        if listen_fd is None:
            super().__init__((host, port), _Handler)
            return
        # Socket handed over by the parent (local target / supervisor): the port never changes across restarts
        # and no other process can take it between "pick a free port" and "bind".
        super().__init__((host, port), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = socket.socket(fileno=listen_fd)
        self.server_address = self.socket.getsockname()
        self.server_activate()

    @property
    def port(self) -> int:
        return self.server_address[1]
