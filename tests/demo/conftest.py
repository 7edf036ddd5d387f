"""In-process demo agents and a results receiver, all on 127.0.0.1 and stopped by the fixtures."""

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo.agent.behaviour import Behaviour
from demo.agent.server import Agent, AgentServer
from rollgate_client import batch_response, validate_batch


class RunningAgent:
    def __init__(self, version: str, behaviour: Behaviour, *, service="agent-infer", env="staging", seed=7):
        self.agent = Agent(service=service, env=env, version=version, behaviour=behaviour, seed=seed)
        self.server = AgentServer(self.agent)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.port}"

    def run(self, trace_id: str) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + "/run", data=json.dumps({"trace_id": trace_id}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def samples(self) -> dict[tuple, float]:
        """{(sample name, frozenset of labels): value} from a real scrape of /metrics."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.agent.close()


@pytest.fixture
def start_agent():
    agents = []

    def start(version="v1.0.0", **behaviour) -> RunningAgent:
        behaviour.setdefault("latency_ms", 1.0)
        behaviour.setdefault("latency_spread", 0.0)
        agent = RunningAgent(version, Behaviour(**behaviour))
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()


class ResultsReceiver:
    """Rollgate's /api/traces/results/ as docs/routing-client.md describes it."""

    def __init__(self):
        self.batches: list[list] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                valid, errors = validate_batch(items)
                receiver.batches.append(items)
                body = json.dumps(batch_response(valid, errors)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/traces/results/"

    @property
    def items(self) -> list[dict]:
        return [item for batch in self.batches for item in batch]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def results_receiver():
    receiver = ResultsReceiver()
    yield receiver
    receiver.stop()
