"""Register with Rollgate's agent registry and keep heartbeating, as a real agent instance would.

Enabled when ROLLGATE_URL and ROLLGATE_AGENT_TOKEN_FILE are set (the demo passes both to the agents it starts).
Failures are logged and retried on the next beat: the agent keeps serving whether Rollgate answers or not.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.error
import urllib.request

log = logging.getLogger("demo.agent.registry")


class RegistryHeartbeat:
    def __init__(self, *, url: str, token: str, service: str, env: str, version: str, model: str = "demo-llm",
                 region: str = "local", interval_s: float = 5.0):
        self.url = url.rstrip("/")
        self.token = token
        self.interval_s = interval_s
        self.report = {"service": service, "environment": env, "agent_id": f"{socket.gethostname()}-{os.getpid()}",
                       "model": model, "version": version, "gray_tag": "", "status": "healthy", "region": region}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="registry-heartbeat", daemon=True)

    @classmethod
    def from_environment(cls, **fields) -> RegistryHeartbeat | None:
        url, token_file = os.environ.get("ROLLGATE_URL"), os.environ.get("ROLLGATE_AGENT_TOKEN_FILE")
        if not url or not token_file:
            return None
        try:
            token = open(token_file).read().strip()
        except OSError as error:
            log.warning("no agent token (%s): not registering with Rollgate", error.strerror)
            return None
        return cls(url=url, token=token, **fields)

    def _post(self, path: str) -> int:
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(self.report).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status

    def _run(self) -> None:
        path = "/api/agents/register"
        while not self._stop.is_set():
            try:
                self._post(path)
                path = "/api/agents/heartbeat"
            except urllib.error.HTTPError as error:
                log.warning("agent registry answered %s", error.code)
                path = "/api/agents/register" if error.code == 404 else path
            except (urllib.error.URLError, OSError) as error:
                log.warning("agent registry unreachable: %s", getattr(error, "reason", error))
            self._stop.wait(self.interval_s)

    def start(self) -> RegistryHeartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
