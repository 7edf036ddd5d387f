"""Each channel's format and signing scheme, posted to a loopback receiver and verified the way the receiving
service verifies it (Feishu, DingTalk: their documented HMAC; generic: X-Rollgate-Signature)."""
import base64
import hashlib
import hmac
import json
import time

import pytest

from notifications import channels
from notifications.channels import Channel, Message

MESSAGE = Message(event="rolled_back", title="[Rollgate] Rolled back: agent-infer v1.2.0 in staging",
                  lines=("Rolled back by sla-gate",
                         "SLA gate: v1.2.0 succeeded on 91.17 % of 69 traces, below the 99.00 % floor"),
                  link="http://rollgate.test/releases/7/#sla", data={"release_id": 7, "environment": "staging"})


def send(receiver, channel, secret="", now=None, key="audit-9/3"):
    request = channels.build_request(channel=channel, body=channels.payload(MESSAGE, channel), secret=secret,
                                     now=now, event=MESSAGE.event, delivery_key=key)
    outcome = channels.post(url=receiver.url(), channel=channel, request=request, timeout_s=5)
    return outcome, receiver.posts[-1]


def test_generic_webhook_is_signed_with_hmac_over_timestamp_and_body(receiver):
    outcome, post = send(receiver, Channel.GENERIC, secret="s3cret-generic", now=1_795_000_000)
    assert outcome.delivered and outcome.status_code == 200
    body = post.json()
    assert body["event"] == "rolled_back" and body["link"].endswith("/releases/7/#sla")
    assert "below the 99.00 % floor" in body["text"] and body["release_id"] == 7
    assert post.headers["x-rollgate-event"] == "rolled_back"
    assert post.headers["x-rollgate-delivery"] == post.headers["idempotency-key"] == "audit-9/3"
    timestamp = post.headers["x-rollgate-timestamp"]
    assert timestamp == "1795000000"
    expected = "sha256=" + hmac.new(b"s3cret-generic", timestamp.encode() + b"." + post.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(post.headers["x-rollgate-signature"], expected)
    forged = "sha256=" + hmac.new(b"other-secret", timestamp.encode() + b"." + post.body, hashlib.sha256).hexdigest()
    assert post.headers["x-rollgate-signature"] != forged
    # without a secret: no signature headers at all
    _, unsigned = send(receiver, Channel.GENERIC)
    assert "x-rollgate-signature" not in unsigned.headers


def test_feishu_post_carries_timestamp_and_sign_in_the_body(receiver):
    now = time.time()
    outcome, post = send(receiver, Channel.FEISHU, secret="feishu-SEC-123", now=now)
    assert outcome.delivered
    body = post.json()
    assert body["msg_type"] == "post"
    post_body = body["content"]["post"]["en_us"]
    assert post_body["title"] == MESSAGE.title
    assert [{"tag": "a", "text": "Open in Rollgate", "href": MESSAGE.link}] in post_body["content"]
    assert body["timestamp"] == str(int(now))
    # Feishu's verification: HMAC-SHA256 keyed with "timestamp\nsecret" over an empty message, base64
    key = f"{body['timestamp']}\nfeishu-SEC-123".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert "feishu-SEC-123" not in post.body.decode()


def test_dingtalk_markdown_with_timestamp_and_sign_in_the_query(receiver):
    now = 1_795_000_123.456
    outcome, post = send(receiver, Channel.DINGTALK, secret="SECdingding", now=now)
    assert outcome.delivered
    body = post.json()
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] == MESSAGE.title
    assert "[Open in Rollgate](http://rollgate.test/releases/7/#sla)" in body["markdown"]["text"]
    assert post.query["timestamp"] == "1795000123456"  # milliseconds
    # DingTalk's verification: HMAC-SHA256 keyed with the secret over "timestamp\nsecret", base64 (URL-decoded)
    message = f"{post.query['timestamp']}\nSECdingding".encode()
    assert post.query["sign"] == base64.b64encode(hmac.new(b"SECdingding", message, hashlib.sha256).digest()).decode()


def test_slack_blocks_and_wecom_markdown_are_unsigned(receiver):
    outcome, post = send(receiver, Channel.SLACK)
    assert outcome.delivered
    body = post.json()
    assert body["text"] == MESSAGE.title
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": MESSAGE.title}}
    assert any(block["text"]["text"] == f"<{MESSAGE.link}|Open in Rollgate>" for block in body["blocks"][1:])
    assert "x-rollgate-signature" not in post.headers and post.query == {}

    outcome, post = send(receiver, Channel.WECOM)
    body = post.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith(f"**{MESSAGE.title}**\n> Rolled back by sla-gate")
    assert f"[Open in Rollgate]({MESSAGE.link})" in body["markdown"]["content"]


@pytest.mark.parametrize("channel,answer,words", [
    (Channel.FEISHU, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}, "code 19021"),
    (Channel.DINGTALK, {"errcode": 310000, "errmsg": "sign not match"}, "code 310000"),
    (Channel.WECOM, {"errcode": 93000, "errmsg": "invalid webhook url"}, "code 93000"),
])
def test_a_chat_service_that_answers_200_with_an_error_code_is_not_a_delivery(receiver, channel, answer, words):
    receiver.answers.append((200, answer))
    outcome, _ = send(receiver, channel)
    assert not outcome.delivered and not outcome.retryable
    assert words in outcome.error and receiver.url() not in outcome.error


def test_server_errors_are_retryable_client_errors_are_not_and_no_url_leaks(receiver):
    receiver.answers.append((503, {}))
    outcome, _ = send(receiver, Channel.SLACK)
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, True, 503)
    receiver.answers.append((404, {}))
    outcome, _ = send(receiver, Channel.SLACK)
    assert (outcome.delivered, outcome.retryable) == (False, False)
    request = channels.build_request(channel="slack", body={"text": "x"})
    unreachable = channels.post(url="http://127.0.0.1:9/hooks/T000/B000/XXXXSECRET", channel="slack",
                                request=request, timeout_s=2)
    assert not unreachable.delivered and unreachable.retryable and "XXXXSECRET" not in unreachable.error
    assert json.loads(request.body) == {"text": "x"}
