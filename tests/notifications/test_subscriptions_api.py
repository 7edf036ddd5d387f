"""Ops manage subscriptions over the API; URLs and secrets never come back; bad input names the field."""
from notifications.models import Delivery, Subscription
from releases.models import AuditEvent
from tests.conftest import client_for

SLACK = "https://hooks.slack.com/services/T000/B000/abcdefSECRETpath"


def test_ops_create_a_subscription_and_never_see_its_url_or_secret_again(ops, environments):
    created = client_for(ops).post("/api/notifications/subscriptions/", {
        "name": "prod feishu", "channel": "feishu", "url": "https://open.feishu.cn/open-apis/bot/v2/hook/tok123",
        "signing_secret": "feishuSEC", "events": ["live", "rolled_back", "live"], "environments": ["prod"]},
        format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["url"] == "https://open.feishu.cn/…" and body["signing_secret_set"] is True
    assert body["events"] == ["live", "rolled_back"] and body["environments"] == ["prod"]
    listing = client_for(ops).get("/api/notifications/subscriptions/").content.decode()
    assert "tok123" not in listing and "feishuSEC" not in listing
    audit = AuditEvent.objects.get(action="notification.subscription.create")
    assert "tok123" not in str(audit.details) and "feishuSEC" not in str(audit.details)
    assert Subscription.objects.get().url.endswith("tok123")  # stored (sealed), read back for sending

    patched = client_for(ops).patch(f"/api/notifications/subscriptions/{body['id']}/",
                                    {"events": ["paused"], "enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["events"] == ["paused"] and not patched.json()["enabled"]
    assert client_for(ops).delete(f"/api/notifications/subscriptions/{body['id']}/").status_code == 204
    assert AuditEvent.objects.filter(action__startswith="notification.subscription.").count() == 3


def test_bad_subscriptions_are_refused_naming_the_field(ops, environments):
    def create(**changes):
        body = {"name": "s", "channel": "slack", "url": SLACK, "events": ["paused"], **changes}
        return client_for(ops).post("/api/notifications/subscriptions/", body, format="json")

    signed_slack = create(signing_secret="x")
    assert signed_slack.status_code == 400
    assert signed_slack.json()["errors"] == {"signing_secret": [
        "slack webhooks are not signed (the URL is the secret): leave signing_secret empty; signed channels: "
        "dingtalk, feishu, generic"]}
    unknown_env = create(environments=["qa-land"])
    assert unknown_env.status_code == 400 and "no environment named qa-land" in unknown_env.json()["detail"]
    assert "events" in create(events=[]).json()["errors"]
    assert "events" in create(events=["deployed"]).json()["errors"]
    assert "channel" in create(channel="teams").json()["errors"]
    assert "url" in create(url="ftp://x.example.com/").json()["errors"]
    assert create().status_code == 201
    duplicate = create()
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]


def test_who_may_read_and_who_may_manage(dev, rm, auditor, ops, environments):
    body = {"name": "s", "channel": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            "events": ["blocked"]}
    assert client_for(rm).post("/api/notifications/subscriptions/", body, format="json").status_code == 403
    assert client_for(dev).get("/api/notifications/subscriptions/").status_code == 403
    assert client_for(ops).post("/api/notifications/subscriptions/", body, format="json").status_code == 201
    assert len(client_for(auditor).get("/api/notifications/subscriptions/").json()) == 1
    assert client_for(rm).get("/api/notifications/deliveries/").status_code == 200
    assert client_for(dev).get("/api/notifications/deliveries/").status_code == 403
    assert client_for(auditor).post("/api/notifications/deliveries/1/retry/", format="json").status_code == 403


def test_deliveries_list_filters_by_status_and_event(ops, auditor, environments):
    from django.utils import timezone

    now = timezone.now()
    for index, (event, status) in enumerate([("paused", "delivered"), ("paused", "failed"), ("live", "pending")]):
        Delivery.objects.create(key=f"k{index}", subscription_name="s", channel="slack", event=event, event_key="e",
                                message={"title": f"t{index}"}, status=status, next_attempt_at=now, created_at=now)
    client = client_for(auditor)
    assert [d["title"] for d in client.get("/api/notifications/deliveries/?event=paused").json()] == ["t1", "t0"]
    assert [d["status"] for d in client.get("/api/notifications/deliveries/?status=failed").json()] == ["failed"]
    bad = client.get("/api/notifications/deliveries/?status=lost")
    assert bad.status_code == 400 and "status" in bad.json()["errors"]
    missing = client_for(ops).post("/api/notifications/deliveries/999999/retry/", format="json")
    assert missing.status_code == 404 and "no delivery with id 999999" in missing.json()["detail"]


def test_the_notifications_page_shows_subscriptions_and_deliveries_and_ops_send_again(client, ops, auditor, dev,
                                                                                      environments):
    from django.utils import timezone

    Subscription.objects.create(name="prod-slack", channel="slack", url=SLACK, events=["live", "paused"],
                                environments=["prod"])
    now = timezone.now()
    failed = Delivery.objects.create(key="k1", subscription_name="prod-slack", channel="slack", event="paused",
                                     event_key="e", message={"title": "[Rollgate] Paused: agent-infer v1 in prod"},
                                     status="failed", attempts=6, last_error="attempt 6: webhook answered HTTP 502",
                                     next_attempt_at=now, created_at=now)
    client.force_login(auditor)
    page = client.get("/notifications/").content.decode()
    assert 'data-subscription="prod-slack"' in page and "https://hooks.slack.com/…" in page
    assert "abcdefSECRETpath" not in page
    assert "[Rollgate] Paused: agent-infer v1 in prod" in page and "webhook answered HTTP 502" in page
    assert "Send again" not in page  # auditors read only
    assert 'href="/notifications/"' in page  # in the navigation
    assert client.post(f"/notifications/deliveries/{failed.pk}/retry/").status_code == 403
    client.force_login(ops)
    assert "Send again" in client.get("/notifications/?status=failed").content.decode()
    assert "Send again" not in client.get("/notifications/?status=delivered").content.decode()
    answer = client.post(f"/notifications/deliveries/{failed.pk}/retry/", follow=True)
    assert "queued again" in answer.content.decode()
    assert Delivery.objects.get(pk=failed.pk).status == "pending"
    client.force_login(dev)
    assert client.get("/notifications/").status_code == 403
