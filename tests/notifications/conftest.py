"""A loopback HTTP receiver that records what each webhook post looked like (path, query, headers, body) and
answers what the test tells it to."""
import http.server
import json
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Received:
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    def __init__(self):
        self.posts: list[Received] = []
        self.answers: list[tuple[int, dict]] = []  # consumed one per post; then 200 {}
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def _handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                receiver.posts.append(Received(path=parts.path, query={k: v[0] for k, v in parse_qs(parts.query).items()},
                                               headers={k.lower(): v for k, v in self.headers.items()},
                                               body=self.rfile.read(length)))
                status, body = receiver.answers.pop(0) if receiver.answers else (200, {})
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()
