"""Webhook notifications for a failed pipeline stage: generic JSON, Feishu, DingTalk, Slack.

Payloads are built from a `StageFailure` that carries no secrets by construction, and
every free-text field goes through `redact` on the way in (a build log line can contain
a token). Sending has a timeout and never raises: a failed notification must not fail
the pipeline a second time; the caller records the returned `WebhookDelivery`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import httpx

_KEY = r"[\w-]*(?:token|secret|password|passwd|pwd|api[_-]?key|access[_-]?key|private[_-]?key)[\w-]*"

# Secret shapes, each with a test (tests/pipelines/test_redaction.py). A match keeps what names the secret (the
# key, the flag, the scheme) and replaces only the secret itself.
SECRET_SHAPES: list[tuple[str, re.Pattern, str]] = [
    # {"password": "hunter2"}, 'api_key': 'x' (JSON / Python dict quoting)
    ("json-quoted", re.compile(rf"""(?i)(["'](?:{_KEY})["']\s*:\s*)("(?:[^"\\]|\\.)*"|'[^']*')"""),
     r'\1"[redacted]"'),
    # password=x, TOKEN: x, --password=x, api-key="x y"
    ("key=value", re.compile(rf"""(?i)\b({_KEY})(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)"""),
     r"\1\2[redacted]"),
    # --password x, --token x (a flag, then the secret as the next word)
    ("--flag value", re.compile(rf"""(?i)(--{_KEY})(\s+)(?!-)("[^"]*"|'[^']*'|\S+)"""), r"\1\2[redacted]"),
    # mysql -p<password> / -p <password>
    ("-p password", re.compile(r"""(?<![\w-])(-p)(\s*)(?![0-9]+(?::[0-9]+)*\b)(?!-)("[^"]*"|'[^']*'|\S+)"""),
     r"\1\2[redacted]"),
    # Authorization: Bearer x / Basic x / Token x, and a bare "Bearer x"
    ("authorization", re.compile(r"(?i)\b(authorization\s*[:=]\s*[\"']?)(bearer|basic|token)\s+[^\s\"',]+"),
     r"\1\2 [redacted]"),
    ("bearer", re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    ("url credentials", re.compile(r"(?i)(https?://)[^/\s:@]+:[^/\s@]+@"), r"\1[redacted]@"),
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
     "[redacted private key]"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), "[redacted]"),
    # Well-known token prefixes: GitLab, GitHub, Slack, AWS access key ids, OpenAI-style, Rollgate agent tokens
    ("token prefix", re.compile(r"\b(?:gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}"
                                r"|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}"
                                r"|sk-[A-Za-z0-9_-]{20,}|rgat_[A-Za-z0-9_-]{20,})"), "[redacted]"),
]


def redact(text: str) -> str:
    for _name, pattern, replacement in SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


class WebhookFormat(StrEnum):
    GENERIC = "generic"
    FEISHU = "feishu"
    DINGTALK = "dingtalk"
    SLACK = "slack"


@dataclass(frozen=True)
class StageFailure:
    service: str
    version: str
    environment: str
    pipeline_id: int | str
    stage: str
    reason: str
    release_url: str = ""
    log_tail: tuple[str, ...] = ()
    labels: tuple[str, ...] = ("ci_failed",)

    def redacted(self) -> StageFailure:
        return StageFailure(
            service=self.service, version=self.version, environment=self.environment,
            pipeline_id=self.pipeline_id, stage=self.stage, reason=redact(self.reason),
            release_url=redact(self.release_url),
            log_tail=tuple(redact(line) for line in self.log_tail[-10:]),
            labels=self.labels,
        )


def _title(failure: StageFailure) -> str:
    return (f"[Rollgate] {failure.service} {failure.version}: {failure.stage} stage failed "
            f"({failure.environment})")


def _text(failure: StageFailure) -> str:
    lines = [_title(failure), f"Pipeline #{failure.pipeline_id}", f"Reason: {failure.reason}"]
    if failure.log_tail:
        lines.append("Last log lines:")
        lines.extend(f"  {line}" for line in failure.log_tail)
    if failure.release_url:
        lines.append(f"Release: {failure.release_url}")
    return "\n".join(lines)


def webhook_payload(failure: StageFailure, fmt: WebhookFormat | str) -> dict:
    """The JSON body for one webhook format (secrets redacted first)."""
    failure = failure.redacted()
    fmt = WebhookFormat(fmt)
    if fmt == WebhookFormat.GENERIC:
        return {"event": "pipeline.stage_failed", "title": _title(failure), **asdict(failure),
                "log_tail": list(failure.log_tail), "labels": list(failure.labels)}
    if fmt == WebhookFormat.FEISHU:
        # Feishu/Lark custom bot, "post" rich-text message.
        content = [[{"tag": "text", "text": line}] for line in _text(failure).splitlines()[1:]]
        if failure.release_url:
            content[-1] = [{"tag": "a", "text": "Open release", "href": failure.release_url}]
        return {"msg_type": "post",
                "content": {"post": {"en_us": {"title": _title(failure), "content": content}}}}
    if fmt == WebhookFormat.DINGTALK:
        # DingTalk custom robot, markdown message.
        body = _text(failure).splitlines()
        markdown = f"### {body[0]}\n\n" + "\n\n".join(
            f"> {line}" if line.startswith("  ") else line for line in body[1:])
        return {"msgtype": "markdown",
                "markdown": {"title": _title(failure), "text": markdown}}
    # Slack incoming webhook: `text` is the notification fallback, blocks the layout.
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(failure)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*Reason:* {failure.reason}\n"
                                             f"*Pipeline:* #{failure.pipeline_id}"}},
    ]
    if failure.log_tail:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": "```" + "\n".join(failure.log_tail) + "```"}})
    if failure.release_url:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"<{failure.release_url}|Open release>"}})
    return {"text": _title(failure), "blocks": blocks}


@dataclass(frozen=True)
class Webhook:
    url: str  # may itself hold a secret (DingTalk access_token): never logged or returned
    fmt: WebhookFormat = WebhookFormat.GENERIC
    name: str = ""
    # Feishu/DingTalk "signature" security: only an HMAC derived from it is sent.
    signing_secret: str = field(default="", repr=False)


def _signed_request(webhook: Webhook, payload: dict, now: float) -> tuple[dict, dict]:
    """(payload, query params) with the bot's signature added when a secret is configured."""
    if not webhook.signing_secret:
        return payload, {}
    secret = webhook.signing_secret.encode()
    if webhook.fmt == WebhookFormat.FEISHU:
        timestamp = str(int(now))
        key = f"{timestamp}\n{webhook.signing_secret}".encode()
        sign = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return {"timestamp": timestamp, "sign": sign, **payload}, {}
    if webhook.fmt == WebhookFormat.DINGTALK:
        timestamp = str(int(now * 1000))
        message = f"{timestamp}\n{webhook.signing_secret}".encode()
        sign = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()
        return payload, {"timestamp": timestamp, "sign": sign}
    return payload, {}


@dataclass
class WebhookDelivery:
    name: str
    fmt: str
    delivered: bool
    status_code: int | None
    error: str
    duration_s: float


def webhook_send(*, webhook: Webhook, failure: StageFailure,
                 timeout_s: float = 5.0) -> WebhookDelivery:
    """POST the payload once. Never raises; the result names the webhook, not its URL."""
    started = time.monotonic()
    status_code, error = None, ""
    try:
        payload, params = _signed_request(webhook, webhook_payload(failure, webhook.fmt),
                                          time.time())
        response = httpx.post(webhook.url, json=payload, params=params, timeout=timeout_s)
        status_code = response.status_code
        if not response.is_success:
            error = f"webhook answered HTTP {status_code}"
    except httpx.TimeoutException:
        error = f"webhook timed out after {timeout_s}s"
    except httpx.HTTPError as exc:
        # The exception text includes the URL; keep only its class.
        error = f"webhook unreachable ({type(exc).__name__})"
    return WebhookDelivery(name=webhook.name or WebhookFormat(webhook.fmt).value,
                           fmt=WebhookFormat(webhook.fmt).value,
                           delivered=not error, status_code=status_code, error=error,
                           duration_s=round(time.monotonic() - started, 3))


def stage_failure_notify(*, webhooks: list[Webhook], failure: StageFailure,
                         timeout_s: float = 5.0) -> list[WebhookDelivery]:
    return [webhook_send(webhook=w, failure=failure, timeout_s=timeout_s) for w in webhooks]
