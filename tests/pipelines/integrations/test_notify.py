"""Webhook payloads posted to a real local HTTP server, one per format."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from pipelines.integrations.notify import (
    StageFailure,
    Webhook,
    WebhookFormat,
    stage_failure_notify,
    webhook_send,
)

SECRET_TOKEN = "s3cr3t-value-0123456789"


@pytest.fixture
def receiver():
    """Records every POST; `/slow` answers after 1 s, `/fail` with 500."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body),
                             "content_type": self.headers["Content-Type"]})
            if self.path.startswith("/slow"):
                time.sleep(1)
            status = 500 if self.path.startswith("/fail") else 200
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except BrokenPipeError:  # the slow case: the client gave up first, as intended
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def failure():
    return StageFailure(
        service="support-agent", version="v1.4.0", environment="prod", pipeline_id=42,
        stage="push", reason=f"push failed: registry said 503 (token={SECRET_TOKEN})",
        release_url="https://rollgate.example/releases/42",
        log_tail=("push attempt 3/3", f"Authorization: Bearer {SECRET_TOKEN}"),
    )


def posted(receiver, fmt, failure, **webhook_options):
    delivery = webhook_send(webhook=Webhook(url=f"{receiver.url}/{fmt}", fmt=fmt,
                                            **webhook_options), failure=failure)
    assert delivery.delivered, delivery
    request = receiver.received[-1]
    assert request["content_type"] == "application/json"
    assert SECRET_TOKEN not in json.dumps(request["body"])
    return request


def test_generic_payload_carries_the_failure_fields(receiver, failure):
    body = posted(receiver, WebhookFormat.GENERIC, failure)["body"]
    assert body["event"] == "pipeline.stage_failed"
    assert (body["service"], body["version"], body["stage"], body["pipeline_id"]) == (
        "support-agent", "v1.4.0", "push", 42)
    assert body["labels"] == ["ci_failed"]
    assert body["reason"] == "push failed: registry said 503 (token=[redacted]"
    assert body["log_tail"] == ["push attempt 3/3", "Authorization: Bearer [redacted]"]


def test_feishu_payload_is_a_post_message(receiver, failure):
    body = posted(receiver, WebhookFormat.FEISHU, failure)["body"]
    assert body["msg_type"] == "post"
    post = body["content"]["post"]["en_us"]
    assert post["title"] == "[Rollgate] support-agent v1.4.0: push stage failed (prod)"
    assert all(isinstance(line, list) and line[0]["tag"] in ("text", "a")
               for line in post["content"])
    assert post["content"][-1] == [{"tag": "a", "text": "Open release",
                                    "href": "https://rollgate.example/releases/42"}]


def test_feishu_signature_is_in_body_and_secret_is_not(receiver, failure):
    body = posted(receiver, WebhookFormat.FEISHU, failure, signing_secret="bot-secret")["body"]
    key = f"{body['timestamp']}\nbot-secret".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert "bot-secret" not in json.dumps(body)


def test_dingtalk_payload_is_markdown_and_signed_in_the_query(receiver, failure):
    request = posted(receiver, WebhookFormat.DINGTALK, failure, signing_secret="ding-secret")
    body = request["body"]
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"].startswith("[Rollgate] support-agent")
    assert body["markdown"]["text"].startswith("### [Rollgate] support-agent v1.4.0")
    query = parse_qs(urlsplit(request["path"]).query)
    message = f"{query['timestamp'][0]}\nding-secret".encode()
    expected = base64.b64encode(hmac.new(b"ding-secret", message, hashlib.sha256).digest())
    assert query["sign"][0] == expected.decode()


def test_slack_payload_has_fallback_text_and_blocks(receiver, failure):
    body = posted(receiver, WebhookFormat.SLACK, failure)["body"]
    assert body["text"] == "[Rollgate] support-agent v1.4.0: push stage failed (prod)"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "section"]
    assert body["blocks"][-1]["text"]["text"] == "<https://rollgate.example/releases/42|Open release>"


def test_slow_webhook_times_out_without_raising(receiver, failure):
    delivery = webhook_send(webhook=Webhook(url=f"{receiver.url}/slow", name="ops"),
                            failure=failure, timeout_s=0.3)
    assert not delivery.delivered
    assert delivery.error == "webhook timed out after 0.3 s"
    assert delivery.duration_s < 1


def test_failing_and_unreachable_webhooks_are_reported_without_their_url(receiver, failure):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    deliveries = stage_failure_notify(failure=failure, webhooks=[
        Webhook(url=f"{receiver.url}/fail", name="team"),
        Webhook(url=f"http://127.0.0.1:{dead_port}/hook?access_token={SECRET_TOKEN}",
                fmt=WebhookFormat.DINGTALK),
        Webhook(url=f"{receiver.url}/ok", fmt=WebhookFormat.SLACK),
    ])
    assert [(d.name, d.delivered, d.status_code) for d in deliveries] == [
        ("team", False, 500), ("dingtalk", False, None), ("slack", True, 200)]
    assert deliveries[0].error == "webhook answered HTTP 500"
    assert deliveries[1].error == "webhook unreachable (ConnectError)"
    assert SECRET_TOKEN not in repr(deliveries)
