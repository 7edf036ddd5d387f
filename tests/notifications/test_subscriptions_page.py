"""Ops manage subscriptions with the form on /notifications/: the same checks as the API (errors next to their
field, nothing stored), audited, and the URL and secret never shown again. Others read the table."""
from notifications.models import Subscription
from releases.models import AuditEvent

FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/tok123"


def form(**changes) -> dict:
    return {"name": "prod feishu", "channel": "feishu", "url": FEISHU, "signing_secret": "feishuSEC",
            "events": ["live", "rolled_back"], "environments": ["prod"], "language": "zh-hans", "enabled": "on",
            **changes}


def test_ops_create_edit_and_delete_a_subscription_on_the_page(client, ops, environments):
    client.force_login(ops)
    page = client.get("/notifications/").content.decode()
    assert 'id="subscription-form"' in page and "Create the subscription" in page

    created = client.post("/notifications/subscriptions/", form(), follow=True)
    page = created.content.decode()
    assert created.status_code == 200 and "subscription &#x27;prod feishu&#x27; created" in page
    subscription = Subscription.objects.get(name="prod feishu")
    assert subscription.url == FEISHU and subscription.signing_secret == "feishuSEC"
    assert subscription.events == ["live", "rolled_back"] and subscription.environments == ["prod"]
    assert subscription.language == "zh-hans" and subscription.enabled
    assert "tok123" not in page and "feishuSEC" not in page and "https://open.feishu.cn/…" in page

    editing = client.get(f"/notifications/?edit={subscription.pk}").content.decode()
    assert "Edit the subscription" in editing and "tok123" not in editing and "feishuSEC" not in editing
    assert 'value="rolled_back" checked' in editing

    # empty URL and secret keep the stored ones; an unticked "enabled" disables
    edited = client.post(f"/notifications/subscriptions/{subscription.pk}/",
                         form(url="", signing_secret="", events=["paused"], enabled=""), follow=True)
    assert edited.status_code == 200 and "saved" in edited.content.decode()
    subscription.refresh_from_db()
    assert subscription.events == ["paused"] and not subscription.enabled
    assert subscription.url == FEISHU and subscription.signing_secret == "feishuSEC"

    deleted = client.post(f"/notifications/subscriptions/{subscription.pk}/delete/", follow=True)
    assert deleted.status_code == 200 and "deleted" in deleted.content.decode()
    assert not Subscription.objects.exists()
    actions = list(AuditEvent.objects.filter(action__startswith="notification.subscription.")
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["notification.subscription.create", "notification.subscription.update",
                       "notification.subscription.delete"]
    assert all("tok123" not in str(a.details) and "feishuSEC" not in str(a.details)
               for a in AuditEvent.objects.filter(action__startswith="notification.subscription."))


def test_bad_input_shows_the_field_error_and_stores_nothing(client, ops, environments):
    client.force_login(ops)
    bad_url = client.post("/notifications/subscriptions/", form(url="ftp://files.example.com/hook"))
    page = bad_url.content.decode()
    assert bad_url.status_code == 400 and 'data-field-error="url"' in page
    assert "ftp://files.example.com" not in page and "feishuSEC" not in page  # nothing secret echoed back
    assert 'value="prod feishu"' in page  # the rest of the form is kept

    unknown_event = client.post("/notifications/subscriptions/", form(events=["live", "deployed"]))
    assert unknown_event.status_code == 400
    assert 'data-field-error="events"' in unknown_event.content.decode()
    assert "is not a valid choice" in unknown_event.content.decode()

    unsigned = client.post("/notifications/subscriptions/", form(channel="slack"))  # a service rule, same words
    assert unsigned.status_code == 400
    assert "slack webhooks are not signed" in unsigned.content.decode()
    assert 'data-field-error="signing_secret"' in unsigned.content.decode()
    assert not Subscription.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="notification.subscription.").exists()


def test_only_ops_change_subscriptions_others_read(client, ops, rm, auditor, dev, environments):
    subscription = Subscription.objects.create(name="s", channel="slack", url="https://hooks.slack.com/services/x",
                                               events=["paused"])
    for person in (rm, auditor):
        client.force_login(person)
        page = client.get("/notifications/").content.decode()
        assert 'id="subscription-form"' not in page and "Only ops may create, change or delete" in page
        assert client.post("/notifications/subscriptions/", form()).status_code == 403
        assert client.post(f"/notifications/subscriptions/{subscription.pk}/", form()).status_code == 403
        assert client.post(f"/notifications/subscriptions/{subscription.pk}/delete/").status_code == 403
    client.force_login(dev)
    assert client.post("/notifications/subscriptions/", form()).status_code == 403
    assert Subscription.objects.get().name == "s" and Subscription.objects.count() == 1
