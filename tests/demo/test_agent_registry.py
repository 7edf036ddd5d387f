"""Demo agents register with Rollgate's agent registry and heartbeat, with the agent token as a bearer token."""
import http.server
import json
import threading
import time

from demo.agent.registry import RegistryHeartbeat


def test_agent_registers_then_heartbeats_and_re_registers_when_forgotten(tmp_path, monkeypatch):
    seen = []
    forget_after = 2

    class Registry(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers["Authorization"], body["version"], body["service"]))
            # after two heartbeats the registry "forgets" the agent (e.g. it was restarted): 404 on heartbeat
            forgotten = self.path.endswith("heartbeat") and len(seen) == forget_after + 1
            self.send_response(404 if forgotten else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "token").write_text("rgat_demo-token\n")
    monkeypatch.setenv("ROLLGATE_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("ROLLGATE_AGENT_TOKEN_FILE", str(tmp_path / "token"))
    heartbeat = RegistryHeartbeat.from_environment(service="agent-infer", env="staging", version="v1.1.0")
    heartbeat.interval_s = 0.05
    heartbeat.start()
    try:
        deadline = time.monotonic() + 5
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        heartbeat.stop()
        server.shutdown()
    paths = [path for path, *_ in seen[:5]]
    assert paths == ["/api/agents/register", "/api/agents/heartbeat", "/api/agents/heartbeat",
                     "/api/agents/register", "/api/agents/heartbeat"]
    assert {auth for _, auth, *_ in seen} == {"Bearer rgat_demo-token"}
    assert {(version, service) for *_, version, service in seen} == {("v1.1.0", "agent-infer")}


def test_without_rollgate_settings_the_agent_does_not_register(monkeypatch):
    monkeypatch.delenv("ROLLGATE_URL", raising=False)
    assert RegistryHeartbeat.from_environment(service="s", env="e", version="v1.0.0") is None
