"""Webhook notifications for a failed pipeline stage: generic JSON, Feishu, DingTalk, Slack.

Payloads are built from a `StageFailure` that carries no secrets by construction, and every free-text field goes
through `redact` on the way in (a build log line can contain a token). The formats, the signing schemes and the
sending are notifications/channels.py's (shared with release notifications); this module only says what a stage
failure looks like. Sending has a timeout and never raises: a failed notification must not fail the pipeline a
second time; the caller records the returned `WebhookDelivery`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from notifications import channels
from releases.redaction import SECRET_SHAPES, redact

__all__ = ["SECRET_SHAPES", "StageFailure", "Webhook", "WebhookDelivery", "WebhookFormat", "redact",
           "stage_failure_notify", "webhook_payload", "webhook_send"]


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


def stage_failure_message(failure: StageFailure) -> channels.Message:
    failure = failure.redacted()
    return channels.Message(
        event="pipeline.stage_failed", title=_title(failure),
        lines=(f"Pipeline #{failure.pipeline_id}", f"Reason: {failure.reason}"),
        code=failure.log_tail, link=failure.release_url, link_text="Open release",
        data={**asdict(failure), "log_tail": list(failure.log_tail), "labels": list(failure.labels)},
    )


def webhook_payload(failure: StageFailure, fmt: WebhookFormat | str) -> dict:
    """The JSON body for one webhook format (secrets redacted first)."""
    return channels.payload(stage_failure_message(failure), WebhookFormat(fmt).value)


@dataclass(frozen=True)
class Webhook:
    url: str  # may itself hold a secret (DingTalk access_token): never logged or returned
    fmt: WebhookFormat = WebhookFormat.GENERIC
    name: str = ""
    # Feishu/DingTalk "signature" security, or the generic format's HMAC: only a signature derived from it is sent.
    signing_secret: str = field(default="", repr=False)


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
    fmt = WebhookFormat(webhook.fmt).value
    request = channels.build_request(channel=fmt, body=webhook_payload(failure, fmt), secret=webhook.signing_secret,
                                     now=time.time(), event="pipeline.stage_failed")
    outcome = channels.post(url=webhook.url, channel=fmt, request=request, timeout_s=timeout_s)
    return WebhookDelivery(name=webhook.name or fmt, fmt=fmt, delivered=outcome.delivered,
                           status_code=outcome.status_code, error=outcome.error, duration_s=outcome.duration_s)


def stage_failure_notify(*, webhooks: list[Webhook], failure: StageFailure,
                         timeout_s: float = 5.0) -> list[WebhookDelivery]:
    return [webhook_send(webhook=w, failure=failure, timeout_s=timeout_s) for w in webhooks]
