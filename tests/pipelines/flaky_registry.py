"""An HTTP proxy in front of the real registry that refuses the first N pushes.

Every push ends with `PUT /v2/<name>/manifests/<ref>` (blobs the registry already has
are skipped), so that request is the one counted and refused: the engine reports the
refusal inside its push stream, exactly as a real failing registry would.
Everything else is forwarded unchanged, including the Host header, so the registry's
upload Location URLs point back at this proxy.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_MANIFEST_PUT = re.compile(r"^/v2/.+/manifests/[^/]+$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate"}


class FlakyRegistryProxy:
    def __init__(self, upstream: str, refuse_pushes: int, status: int = 503, hang_s: float = 0.0):
        """refuse_pushes: how many manifest PUTs to refuse with ``status``, or, with ``hang_s``, to hold without an
        answer for that many seconds and then drop (a registry that hangs)."""
        self.upstream_host, _, port = upstream.partition(":")
        self.upstream_port = int(port or 80)
        self.refuse_pushes = refuse_pushes
        self.hang_s = hang_s
        self.refusal_status = status
        self.manifest_puts = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FlakyRegistryProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _should_refuse(self, method: str, path: str) -> bool:
        if method != "PUT" or not _MANIFEST_PUT.match(path.split("?", 1)[0]):
            return False
        with self._lock:
            self.manifest_puts += 1
            if self.refused < self.refuse_pushes:
                self.refused += 1
                return True
            return False

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(body)
                        body += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes):
                self.send_response(status)
                # A HEAD answer keeps the upstream Content-Length: it is the blob's size.
                keep_length = self.command == "HEAD"
                for name, value in headers:
                    lowered = name.lower()
                    if lowered in _HOP_BY_HOP or (lowered == "content-length" and not keep_length):
                        continue
                    self.send_header(name, value)
                if not keep_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _forward(self):
                body = self._read_body()
                if proxy._should_refuse(self.command, self.path):
                    if proxy.hang_s:
                        time.sleep(proxy.hang_s)  # bounded: then the connection is dropped unanswered
                        self.close_connection = True
                        return
                    error = {"errors": [{
                        "code": "UNAVAILABLE",
                        "message": f"flaky proxy refused push {proxy.refused} of "
                                   f"{proxy.refuse_pushes}",
                    }]}
                    self._send(proxy.refusal_status, [("Content-Type", "application/json")],
                               json.dumps(error).encode())
                    return
                upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                      timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"}
                    if body or self.command in ("PUT", "POST", "PATCH"):
                        headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                    self._send(response.status, response.getheaders(), payload)
                finally:
                    upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        return Handler
