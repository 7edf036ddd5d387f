"""Chat and webhook channels: one message, five formats, each with its own signing scheme; the one HTTP sender
for every notification Rollgate posts (release events here, stage failures from pipelines/integrations/notify.py).

Django-free. Sending never raises and never names the URL (it may hold a token: DingTalk's access_token, WeCom's
key, Slack's path); the result says what happened in words.

Signing, per channel (a secret is optional everywhere it exists):
  generic   X-Rollgate-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>, X-Rollgate-Timestamp
            (seconds); X-Rollgate-Event and X-Rollgate-Delivery (the idempotency key: the same for every retry)
  feishu    body gains "timestamp" (seconds) and "sign" = base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg=""))
            (Feishu/Lark custom bot "signature verification")
  dingtalk  query gains timestamp (milliseconds) and sign = base64(HMAC-SHA256(key=secret,
            msg="<timestamp>\\n<secret>")) (DingTalk custom robot "加签")
  slack     incoming webhooks are not signed: the URL is the secret
  wecom     WeCom (企业微信) group robots are not signed: the key in the URL is the secret
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum

import httpx


class Channel(StrEnum):
    GENERIC = "generic"
    SLACK = "slack"
    FEISHU = "feishu"
    DINGTALK = "dingtalk"
    WECOM = "wecom"


# Channels whose senders can verify a signature; the others refuse a signing secret (it would protect nothing).
SIGNED_CHANNELS = frozenset({Channel.GENERIC, Channel.FEISHU, Channel.DINGTALK})
SIGNATURE_HEADER = "X-Rollgate-Signature"
TIMESTAMP_HEADER = "X-Rollgate-Timestamp"


@dataclass(frozen=True)
class Message:
    """What a notification says, before any channel's format. `lines` are plain text; `code` is shown verbatim
    (log lines); `link` is the page to act on; `data` goes to the generic format as it is."""

    event: str
    title: str
    lines: tuple[str, ...] = ()
    link: str = ""
    link_text: str = "Open in Rollgate"
    code: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)

    def text(self) -> str:
        parts = [self.title, *self.lines]
        if self.code:
            parts += ["", *(f"  {line}" for line in self.code)]
        if self.link:
            parts.append(f"{self.link_text}: {self.link}")
        return "\n".join(parts)


def payload(message: Message, channel: Channel | str) -> dict:
    """The JSON body for one channel."""
    channel = Channel(channel)
    if channel == Channel.GENERIC:
        return {"event": message.event, "title": message.title, "text": "\n".join(message.lines),
                "link": message.link, **message.data}
    if channel == Channel.FEISHU:
        # Feishu/Lark custom bot, "post" rich text: one paragraph per line, the link as an anchor.
        content = [[{"tag": "text", "text": line}] for line in message.lines]
        content += [[{"tag": "text", "text": line}] for line in message.code]
        if message.link:
            content.append([{"tag": "a", "text": message.link_text, "href": message.link}])
        return {"msg_type": "post", "content": {"post": {"en_us": {"title": message.title, "content": content}}}}
    if channel == Channel.DINGTALK:
        markdown = f"### {message.title}\n\n" + "\n\n".join(message.lines)
        if message.code:
            markdown += "\n\n" + "\n\n".join(f"> {line}" for line in message.code)
        if message.link:
            markdown += f"\n\n[{message.link_text}]({message.link})"
        return {"msgtype": "markdown", "markdown": {"title": message.title, "text": markdown}}
    if channel == Channel.WECOM:
        # WeCom group robot markdown: at most 4096 bytes of content.
        content = f"**{message.title}**\n" + "\n".join(f"> {line}" for line in message.lines)
        if message.code:
            content += "\n`" + "`\n`".join(message.code) + "`"
        if message.link:
            content += f"\n[{message.link_text}]({message.link})"
        return {"msgtype": "markdown", "markdown": {"content": content.encode()[:4000].decode(errors="ignore")}}
    # Slack incoming webhook: `text` is the notification fallback, blocks the layout.
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}}]
    if message.lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(message.lines)[:3000]}})
    if message.code:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": "```" + "\n".join(message.code)[:2900] + "```"}})
    if message.link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{message.link}|{message.link_text}>"}})
    return {"text": message.title, "blocks": blocks}


@dataclass(frozen=True)
class Request:
    body: bytes
    params: dict
    headers: dict


def feishu_sign(secret: str, timestamp: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp: str) -> str:
    message = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def generic_sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def build_request(*, channel: Channel | str, body: dict, secret: str = "", now: float | None = None,
                  event: str = "", delivery_key: str = "") -> Request:
    """The exact bytes, query and headers to POST, signed by the channel's scheme when a secret is set."""
    channel = Channel(channel)
    now = time.time() if now is None else now
    params: dict = {}
    headers = {"Content-Type": "application/json", "User-Agent": "Rollgate-Notifications/1"}
    if secret and channel == Channel.FEISHU:
        timestamp = str(int(now))
        body = {"timestamp": timestamp, "sign": feishu_sign(secret, timestamp), **body}
    if secret and channel == Channel.DINGTALK:
        timestamp = str(int(now * 1000))
        params = {"timestamp": timestamp, "sign": dingtalk_sign(secret, timestamp)}
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if channel == Channel.GENERIC:
        if event:
            headers["X-Rollgate-Event"] = event
        if delivery_key:
            headers["X-Rollgate-Delivery"] = delivery_key
            headers["Idempotency-Key"] = delivery_key
        if secret:
            timestamp = str(int(now))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = generic_sign(secret, timestamp, raw)
    return Request(body=raw, params=params, headers=headers)


@dataclass
class Outcome:
    delivered: bool
    status_code: int | None
    error: str
    duration_s: float
    retryable: bool = True  # False when trying again cannot help (the receiver refused the request as such)


def _chat_error(channel: Channel, response: httpx.Response) -> str:
    """Feishu, DingTalk and WeCom answer 200 with an error code in the body (a bad signature, a wrong key)."""
    if channel not in (Channel.FEISHU, Channel.DINGTALK, Channel.WECOM):
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    code = body.get("code", body.get("errcode", body.get("StatusCode", 0)))
    if code in (0, None):
        return ""
    words = body.get("msg") or body.get("errmsg") or body.get("StatusMessage") or ""
    return f"{channel.value} refused the message: code {code} {str(words)[:200]}".strip()


def post(*, url: str, channel: Channel | str, request: Request, timeout_s: float = 5.0) -> Outcome:
    """POST once. Never raises; the outcome names no URL."""
    channel = Channel(channel)
    started = time.monotonic()
    status_code, error, retryable = None, "", True
    try:
        response = httpx.post(url, content=request.body, params=request.params, headers=request.headers,
                              timeout=timeout_s)
        status_code = response.status_code
        if not response.is_success:
            error = f"webhook answered HTTP {status_code}"
            # 4xx other than 408/429 will not change by retrying (wrong URL, refused payload)
            retryable = status_code >= 500 or status_code in (408, 429)
        else:
            error = _chat_error(channel, response)
            retryable = False if error else True
    except httpx.TimeoutException:
        error = f"webhook timed out after {timeout_s:g} s"
    except httpx.HTTPError as exc:
        error = f"webhook unreachable ({type(exc).__name__})"  # the exception's text includes the URL
    return Outcome(delivered=not error, status_code=status_code, error=error,
                   duration_s=round(time.monotonic() - started, 3), retryable=retryable)
