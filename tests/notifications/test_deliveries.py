"""Release events become deliveries for the subscriptions that want them (per environment, per event, per
approving role), are posted to a loopback receiver, retried with backoff, and never posted twice."""
import threading
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from notifications import services
from notifications.choices import DeliveryStatus as D, EventType as E
from notifications.models import Delivery, Subscription
from releases.choices import ReleaseStatus as S
from releases.models import Environment
from releases.services import (Actor, audit_record, release_pause, release_promote, release_rollback,
                               release_worker_transition)
from tests.conftest import client_for, sha

# Deliveries are queued on commit, and two workers race on real connections: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)
GATE_SENTENCE = "v1.2.0 succeeded on 91.17 % of 69 traces, below the 99.00 % floor: ramp paused at 15:43:38"


@pytest.fixture(autouse=True)
def fast_backoff(settings):
    settings.ROLLGATE_NOTIFY_BACKOFF_SECONDS = 10.0
    settings.ROLLGATE_NOTIFY_BACKOFF_CAP_SECONDS = 25.0
    settings.ROLLGATE_NOTIFY_MAX_ATTEMPTS = 4
    settings.ROLLGATE_PUBLIC_URL = "https://rollgate.example.com"


@pytest.fixture
def queued(monkeypatch):
    """The deliveries queued to Celery (after commit), instead of sending them to the broker."""
    from celery import current_app

    calls = []
    monkeypatch.setattr(current_app.tasks["notifications.deliver"], "apply_async",
                        lambda args, countdown=None, **kw: calls.append((args[0], countdown)))
    return calls


def subscribe(receiver, name, channel, events, environments=(), roles=(), secret="", language="en"):
    return Subscription.objects.create(name=name, channel=channel, url=receiver.url(f"/{name}"), events=list(events),
                                       environments=list(environments), roles=list(roles), signing_secret=secret,
                                       language=language)


def delivered(**filters):
    return sorted((d.event, d.subscription_name) for d in Delivery.objects.filter(**filters))


def drain():
    """Run every due delivery once, as the worker would; returns the outcomes."""
    return [services.delivery_attempt(delivery_id=pk) for pk in
            Delivery.objects.filter(status=D.PENDING, next_attempt_at__lte=timezone.now()).values_list("pk", flat=True)]


def test_events_reach_only_the_subscriptions_for_their_environment_and_event(receiver, queued, make_release, rm,
                                                                             live_release):
    subscribe(receiver, "prod-chat", "slack", [E.PROMOTED, E.LIVE, E.APPROVAL_NEEDED], ["prod"])
    subscribe(receiver, "staging-ops", "feishu", [E.PAUSED, E.ROLLED_BACK, E.PROMOTED], ["staging"])
    subscribe(receiver, "everything-live", "generic", [E.LIVE])
    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=5)
    release_pause(actor=Actor.of(rm), release_id=canary.pk, comment="latency")
    release_rollback(actor=Actor.of(rm), release_id=canary.pk, comment="not today")
    assert delivered(release_id=canary.pk) == [("paused", "staging-ops"), ("promoted", "staging-ops"),
                                               ("promoted", "staging-ops"), ("rolled_back", "staging-ops")]
    prod = make_release("v2.0.0", "prod")
    assert delivered(release_id=prod.pk) == [("approval_needed", "prod-chat")]
    assert delivered(release_id=live_release.pk) == []  # it went live before anyone subscribed
    dev = make_release("v2.0.1", "dev")
    release_promote(actor=Actor.of(rm), release_id=dev.pk)  # nothing live in dev: straight to live
    assert delivered(release_id=dev.pk) == [("live", "everything-live")]
    # each delivery was queued after its transaction committed, once
    assert sorted(pk for pk, _ in queued) == sorted(Delivery.objects.values_list("pk", flat=True))

    assert set(drain()) == {"delivered"}
    assert len(receiver.posts) == Delivery.objects.count() == 6
    feishu = [p.json()["content"]["post"]["en_us"] for p in receiver.posts if p.path == "/staging-ops"]
    promoted = [m for m in feishu if m["title"] == "[Rollgate] Promoted: agent-infer v1.1.0 in staging to 5 %"]
    texts = str(promoted[0]["content"])
    assert "0 % → 5 % by rm" in texts and f"https://rollgate.example.com/releases/{canary.pk}/" in texts


def test_a_gate_rollback_carries_the_verdict_sentence_and_a_link_to_the_sla_section(receiver, queued,
                                                                                   make_release, rm, live_release):
    subscribe(receiver, "staging-slack", "slack", [E.ROLLED_BACK], ["staging"])
    canary = make_release("v1.2.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    release_rollback(actor=Actor.system("sla-gate"), release_id=canary.pk, comment=f"SLA gate: {GATE_SENTENCE}",
                     canary_only=True)
    assert drain() == ["delivered"]
    body = receiver.posts[0].json()
    assert body["text"] == "[Rollgate] Rolled back: agent-infer v1.2.0 in staging"
    section = "\n".join(block["text"]["text"] for block in body["blocks"][1:])
    assert "Rolled back by sla-gate" in section and GATE_SENTENCE in section
    assert f"<https://rollgate.example.com/releases/{canary.pk}/#sla|Open in Rollgate>" in section


def test_approval_needed_goes_to_the_roles_whose_approval_is_missing(receiver, queued, make_release, rm, qa):
    Environment.objects.filter(name="staging").update(protected=True, required_approvals={"qa": 2})
    subscribe(receiver, "qa-room", "dingtalk", [E.APPROVAL_NEEDED], roles=["qa"])
    subscribe(receiver, "rm-room", "wecom", [E.APPROVAL_NEEDED], roles=["release_manager"])
    subscribe(receiver, "anyone", "generic", [E.APPROVAL_NEEDED])
    release = make_release("v3.0.0", "staging")
    assert delivered(release_id=release.pk) == [("approval_needed", "anyone"), ("approval_needed", "qa-room")]
    drain()
    ding = [p for p in receiver.posts if p.path == "/qa-room"][0].json()
    assert "Waiting for approval from 2 qa" in ding["markdown"]["text"]
    generic = [p for p in receiver.posts if p.path == "/anyone"][0].json()
    assert generic["approving_roles"] == ["qa"] and generic["version"] == "v3.0.0"
    # no approvals required: no approval_needed at all
    other = make_release("v3.0.1", "test")
    assert delivered(release_id=other.pk) == []


def test_blocked_and_manual_review_are_announced(receiver, queued, make_release, rm, live_release):
    subscribe(receiver, "ops", "generic", [E.BLOCKED, E.MANUAL_REVIEW])
    canary = make_release("v1.3.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    audit_record(actor=Actor.system("sla-gate"), action="sla.manual_review", object_type="release",
                 object_id=canary.pk, release=canary, from_state="gray", to_state="gray",
                 reason="SLA gate needs an operator: callback failures 3.10 % of 1,204 callbacks")
    assert release_worker_transition(release_id=canary.pk, from_statuses={S.GRAY}, to_status=S.BLOCKED,
                                     actor_name="sla-gate", action="sla.block_version",
                                     reason="SLA gate blocked v1.3.0 in routing: 57 failed traces", gray_weight=0)
    assert delivered(release_id=canary.pk) == [("blocked", "ops"), ("manual_review", "ops")]
    drain()
    bodies = {p.json()["event"]: p.json() for p in receiver.posts}
    assert "callback failures 3.10 %" in bodies["manual_review"]["text"]
    assert bodies["manual_review"]["link"].endswith(f"/releases/{canary.pk}/#sla")
    assert "57 failed traces" in bodies["blocked"]["text"] and bodies["blocked"]["status"] == "blocked"


def test_failed_posts_are_retried_with_backoff_and_carry_one_idempotency_key(receiver, queued, make_release):
    subscribe(receiver, "flaky", "generic", [E.APPROVAL_NEEDED], secret="whsec-1")
    Environment.objects.filter(name="staging").update(required_approvals={"release_manager": 1})
    release = make_release("v4.0.0", "staging")
    delivery = Delivery.objects.get(release_id=release.pk)
    receiver.answers += [(500, {}), (503, {})]
    started = timezone.now()
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (D.PENDING, 1)
    assert 9 <= (delivery.next_attempt_at - started).total_seconds() <= 11  # 10 s after the first failure
    assert delivery.last_error == "attempt 1: webhook answered HTTP 500"
    assert queued[-1] == (delivery.pk, 10.0)
    assert services.delivery_attempt(delivery_id=delivery.pk) == "skipped"  # not due yet: no post
    assert len(receiver.posts) == 1

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.delivery_attempt(delivery_id=delivery.pk) == "retry"
    assert queued[-1] == (delivery.pk, 20.0)  # doubled
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (D.DELIVERED, 3, "")
    keys = {p.headers["x-rollgate-delivery"] for p in receiver.posts}
    assert keys == {delivery.key} and len(receiver.posts) == 3
    assert services.backoff_seconds(3) == 25.0  # capped (40 > 25)


def test_gives_up_after_the_last_attempt_and_a_refusal_is_not_retried(receiver, queued, make_release, ops):
    subscribe(receiver, "down", "slack", [E.APPROVAL_NEEDED])
    Environment.objects.filter(name="staging").update(required_approvals={"qa": 1})
    release = make_release("v4.1.0", "staging")
    delivery = Delivery.objects.get(release_id=release.pk)
    receiver.answers += [(502, {})] * 4
    outcomes = []
    for _ in range(4):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        outcomes.append(services.delivery_attempt(delivery_id=delivery.pk))
    assert outcomes == ["retry", "retry", "retry", "failed"]
    delivery.refresh_from_db()
    assert delivery.status == D.FAILED and delivery.last_error == \
        "attempt 4: webhook answered HTTP 502 (gave up after 4 attempts)"

    # ops send it again from the API: pending, queued, then delivered
    answer = client_for(ops).post(f"/api/notifications/deliveries/{delivery.pk}/retry/", format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "pending"
    assert services.delivery_attempt(delivery_id=delivery.pk) == "delivered"
    again = client_for(ops).post(f"/api/notifications/deliveries/{delivery.pk}/retry/", format="json")
    assert again.status_code == 409 and "only a failed one is sent again" in again.json()["detail"]

    other = make_release("v4.1.1", "staging")
    refused = Delivery.objects.get(release_id=other.pk)
    receiver.answers.append((404, {}))
    assert services.delivery_attempt(delivery_id=refused.pk) == "failed"  # a wrong URL does not heal by retrying


def test_never_posted_twice_when_two_workers_take_the_same_delivery(receiver, queued, make_release):
    subscribe(receiver, "once", "generic", [E.APPROVAL_NEEDED])
    Environment.objects.filter(name="staging").update(required_approvals={"qa": 1})
    release = make_release("v5.0.0", "staging")
    delivery = Delivery.objects.get(release_id=release.pk)
    outcomes, barrier = [], threading.Barrier(4)

    def worker():
        from django.db import connection
        try:
            barrier.wait(timeout=10)
            outcomes.append(services.delivery_attempt(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["delivered", "skipped", "skipped", "skipped"]
    assert len(receiver.posts) == 1
    # the same event published again (a replayed signal) queues nothing new
    from notifications.events import audit_event
    from releases.models import AuditEvent

    audit = AuditEvent.objects.get(release=release, to_state="ready")
    assert services.event_publish(event=audit_event(audit, missing_approvals=lambda r: {"qa": 1})) == []
    assert Delivery.objects.filter(release_id=release.pk).count() == 1
    assert services.delivery_attempt(delivery_id=delivery.pk) == "skipped"  # a redelivered task
    assert len(receiver.posts) == 1


def test_the_sweeper_requeues_lost_messages_and_takes_back_dead_claims(receiver, queued, make_release):
    subscribe(receiver, "swept", "generic", [E.APPROVAL_NEEDED])
    Environment.objects.filter(name="staging").update(required_approvals={"qa": 1})
    lost = Delivery.objects.get(release_id=make_release("v6.0.0", "staging").pk)
    stuck = Delivery.objects.get(release_id=make_release("v6.0.1", "staging").pk)
    Delivery.objects.filter(pk=lost.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    Delivery.objects.filter(pk=stuck.pk).update(status=D.SENDING, attempts=1,
                                                claimed_at=timezone.now() - timedelta(minutes=10))
    queued.clear()
    result = services.deliveries_sweep()
    assert result["reclaimed"] == 1 and result["requeued"] == 1
    assert [pk for pk, _ in queued] == [lost.pk]
    stuck.refresh_from_db()
    assert stuck.status == D.PENDING and "the worker stopped mid-send" in stuck.last_error
    assert services.delivery_attempt(delivery_id=stuck.pk) == "delivered"
    assert Delivery.objects.get(pk=stuck.pk).attempts == 2


def test_freeze_start_and_end_are_announced_once_per_occurrence(receiver, queued, environments):
    subscribe(receiver, "freeze", "feishu", [E.FREEZE_STARTED, E.FREEZE_ENDED], ["prod"])
    subscribe(receiver, "staging-only", "generic", [E.FREEZE_STARTED], ["staging"])
    # Fridays 18:00-23:00 UTC
    Environment.objects.filter(name="prod").update(freeze_windows=[
        {"weekdays": [4], "from": "18:00", "to": "23:00", "reason": "weekend change freeze"}])
    friday = datetime(2026, 11, 27, 17, 0, tzinfo=dt_timezone.utc)
    assert services.freeze_sweep(now=friday)["freeze_started"] == 0
    assert services.freeze_sweep(now=friday + timedelta(hours=1, minutes=1))["freeze_started"] == 1
    assert services.freeze_sweep(now=friday + timedelta(hours=2)) == {"freeze_started": 0, "freeze_ended": 0}
    assert services.freeze_sweep(now=friday + timedelta(hours=6, minutes=1))["freeze_ended"] == 1
    next_friday = friday + timedelta(days=7, hours=1, minutes=1)
    assert services.freeze_sweep(now=next_friday)["freeze_started"] == 1  # a week later: announced again
    assert delivered() == [("freeze_ended", "freeze"), ("freeze_started", "freeze"), ("freeze_started", "freeze")]
    drain()
    first = receiver.posts[0].json()
    text = str(first["content"])
    assert first["content"]["post"]["en_us"]["title"] == "[Rollgate] Freeze started in prod"
    assert "weekend change freeze" in text and "rollbacks are still allowed" in text


def test_a_broken_notification_never_blocks_a_release_transition(receiver, queued, make_release, rm, monkeypatch,
                                                                 live_release):
    subscribe(receiver, "any", "generic", [E.PROMOTED])

    def broken(**kwargs):
        raise RuntimeError("notifications are down")

    monkeypatch.setattr(services, "audit_notify", broken)
    canary = make_release("v7.0.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    canary.refresh_from_db()
    assert canary.status == S.GRAY and not Delivery.objects.exists()


def test_each_subscription_reads_its_own_language(receiver, queued, make_release, rm, live_release):
    subscribe(receiver, "feishu-cn", "feishu", [E.PAUSED], language="zh-hans")
    subscribe(receiver, "slack-en", "slack", [E.PAUSED])
    canary = make_release("v1.4.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    release_pause(actor=Actor.of(rm), release_id=canary.pk, comment="p95 creeping up")
    assert drain() == ["delivered", "delivered"]
    feishu = [p.json() for p in receiver.posts if p.path == "/feishu-cn"][0]["content"]["post"]["en_us"]
    assert feishu["title"] == "[Rollgate] 已暂停：staging 环境的 agent-infer v1.4.0，停在 5 %"
    assert [{"tag": "text", "text": "暂停人：rm"}] in feishu["content"]
    assert [{"tag": "text", "text": "p95 creeping up"}] in feishu["content"]  # what the person wrote, as written
    assert {"tag": "a", "text": "在 Rollgate 中打开", "href": f"https://rollgate.example.com/releases/{canary.pk}/"} \
        in feishu["content"][-1]
    slack = [p.json() for p in receiver.posts if p.path == "/slack-en"][0]
    assert slack["text"] == "[Rollgate] Paused: agent-infer v1.4.0 in staging at 5 %"


def test_a_ramp_waiting_at_a_gray_step_asks_the_roles_of_that_step(receiver, queued, environments, service, dev,
                                                                   rm, rm2, qa):
    from releases.services import release_approve

    Environment.objects.filter(name="prod").update(gray_step_approvals={"50": {"qa": 1}})
    subscribe(receiver, "qa-room", "generic", [E.APPROVAL_NEEDED], roles=["qa"])
    subscribe(receiver, "rm-room", "generic", [E.APPROVAL_NEEDED], roles=["release_manager"])
    stable = make_ready("v1.0.0", dev)
    release_approve(actor=Actor.of(rm), release_id=stable.pk)
    release_approve(actor=Actor.of(qa), release_id=stable.pk)
    release_promote(actor=Actor.of(rm), release_id=stable.pk)
    canary = make_ready("v1.1.0", dev)
    release_approve(actor=Actor.of(rm2), release_id=canary.pk)
    release_approve(actor=Actor.of(qa), release_id=canary.pk)
    Delivery.objects.all().delete()
    for weight in (0, 5, 10):
        release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=weight)
    # at 30 % the ramp waits for qa before 50 %: only the qa room hears it, once
    assert delivered(release_id=canary.pk) == [("approval_needed", "qa-room")]
    drain()
    body = receiver.posts[-1].json()
    assert body["step_weight"] == 50 and body["approving_roles"] == ["qa"]
    assert "Waiting for approval from 1 qa" in body["text"] and "to go to 50 %" in body["text"]


def make_ready(tag, by):
    from releases.services import release_create

    release = release_create(actor=Actor.of(by), service="agent-infer", environment="prod", tag=tag,
                             commit=sha())
    assert release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                     actor_name="pipeline", action="pipeline.succeeded")
    return release
