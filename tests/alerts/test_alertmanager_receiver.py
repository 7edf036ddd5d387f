"""POST /api/alerts/alertmanager: Alertmanager's webhook (format version 4) stops the canary its labels name.

Firing: pause or roll back per environment (ROLLGATE_ALERTMANAGER_ACTIONS), as the system actor `alertmanager`
with the alert's summary as the reason. Resolved: recorded; the canary never resumes by itself.
"""
import pytest
from rest_framework.test import APIClient

from alerts.models import AlertEvent
from releases.choices import ReleaseStatus
from releases.models import AuditEvent
from releases.services import Actor, release_promote

pytestmark = pytest.mark.django_db
TOKEN = "am-receiver-secret-7f3a"
URL = "/api/alerts/alertmanager"


@pytest.fixture(autouse=True)
def receiver_settings(settings):
    settings.ROLLGATE_ALERTMANAGER_TOKEN = TOKEN
    settings.ROLLGATE_ALERTMANAGER_ACTIONS = {"*": "pause"}
    settings.ROLLGATE_ALERTMANAGER_LABELS = {"service": "service", "environment": "env", "version": "version"}


@pytest.fixture
def canary(live_release, make_release, rm):
    """v1.1.0 in gray at 5 % in staging, v1.0.0 live."""
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (ReleaseStatus.GRAY, 5)
    return release


def alert(status="firing", summary="p99 latency of agent-infer above 800 ms", fingerprint="c0ffee01",
          **labels):
    labels = {"alertname": "CanaryLatencyHigh", "service": "agent-infer", "env": "staging", **labels}
    labels = {name: value for name, value in labels.items() if value is not None}
    return {"status": status, "labels": labels, "annotations": {"summary": summary} if summary else {},
            "startsAt": "2026-11-29T18:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-29T18:05:00.000Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up", "fingerprint": fingerprint}


def webhook(*alerts, status=None):
    """The body Alertmanager POSTs to a webhook_config receiver."""
    return {"version": "4", "groupKey": '{}:{alertname="CanaryLatencyHigh"}', "truncatedAlerts": 0,
            "status": status or alerts[0]["status"], "receiver": "rollgate",
            "groupLabels": {"alertname": "CanaryLatencyHigh"}, "commonLabels": alerts[0]["labels"],
            "commonAnnotations": alerts[0]["annotations"], "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts)}


def post(body, token=TOKEN, scheme="Bearer"):
    headers = {} if token is None else {"HTTP_AUTHORIZATION": f"{scheme} {token}"}
    return APIClient().post(URL, body, format="json", **headers)


def test_firing_alert_pauses_the_canary_as_alertmanager_with_the_summary(canary):
    response = post(webhook(alert()))
    assert response.status_code == 200, response.content
    [result] = response.json()["results"]
    assert result["outcome"] == "paused" and result["release_id"] == canary.pk
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.PAUSED and canary.gray_weight == 5
    row = AuditEvent.objects.filter(release=canary, action="release.pause").get()
    assert (row.actor_name, row.actor_id) == ("alertmanager", None)
    assert row.reason == "p99 latency of agent-infer above 800 ms"
    event = AlertEvent.objects.get()
    assert (event.status, event.outcome, event.release_id, event.alertname) == (
        "firing", "paused", canary.pk, "CanaryLatencyHigh")


def test_rollback_environment_takes_the_canary_to_zero_and_other_environments_still_pause(
        canary, make_release, rm, settings):
    settings.ROLLGATE_ALERTMANAGER_ACTIONS = {"staging": "rollback", "*": "pause"}
    # a canary in "test" too: the same alert name there only pauses
    stable_test = make_release("v0.9.0", "test")
    release_promote(actor=Actor.of(rm), release_id=stable_test.pk)
    canary_test = make_release("v0.9.1", "test")
    release_promote(actor=Actor.of(rm), release_id=canary_test.pk)
    response = post(webhook(alert(summary="error ratio 7.5 % on the canary"),
                            alert(env="test", fingerprint="c0ffee02", summary="error ratio 3.1 %")))
    assert [r["outcome"] for r in response.json()["results"]] == ["rolled_back", "paused"]
    canary.refresh_from_db(), canary_test.refresh_from_db()
    assert (canary.status, canary.gray_weight) == (ReleaseStatus.ROLLED_BACK, 0)
    assert canary_test.status == ReleaseStatus.PAUSED
    rollback = AuditEvent.objects.get(release=canary, action="release.rollback")
    assert rollback.actor_name == "alertmanager" and rollback.reason == "error ratio 7.5 % on the canary"


def test_alert_about_another_version_leaves_the_canary_alone(canary):
    response = post(webhook(alert(version="v1.0.0")))  # about the stable, not the canary
    [result] = response.json()["results"]
    assert result["outcome"] == "no_canary" and "canary of agent-infer in staging is v1.1.0" in result["detail"]
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.GRAY
    # the version that does match acts
    assert post(webhook(alert(version="v1.1.0")))
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.PAUSED


def test_repeated_firing_alert_acts_once(canary):
    for _ in range(3):  # Alertmanager repeats firing alerts every repeat_interval
        post(webhook(alert()))
    assert AuditEvent.objects.filter(release=canary, action="release.pause").count() == 1
    assert list(AlertEvent.objects.order_by("id").values_list("outcome", flat=True)) == [
        "paused", "already_stopped", "already_stopped"]


def test_resolved_alert_is_recorded_and_never_resumes(canary):
    post(webhook(alert()))
    response = post(webhook(alert(status="resolved")))
    [result] = response.json()["results"]
    assert result["outcome"] == "recorded" and result["release_id"] == canary.pk
    assert "stays paused until a person acts" in result["detail"]
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.PAUSED
    resolved = AuditEvent.objects.get(release=canary, action="alert.resolved")
    assert resolved.actor_name == "alertmanager" and resolved.to_state == "paused"
    assert not AuditEvent.objects.filter(release=canary, action="release.resume").exists()


def test_labels_are_configurable(canary, settings):
    settings.ROLLGATE_ALERTMANAGER_LABELS = {"service": "app", "environment": "namespace", "version": "image_tag"}
    body = webhook(alert(service=None, env=None, app="agent-infer", namespace="staging", image_tag="v1.1.0"))
    assert post(body).json()["results"][0]["outcome"] == "paused"


def test_alert_without_service_or_environment_label_is_recorded_unmatched(canary):
    [result] = post(webhook(alert(env=None))).json()["results"]
    assert result["outcome"] == "unmatched" and "no env label" in result["detail"]
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.GRAY


def test_no_canary_running_is_recorded(live_release):
    [result] = post(webhook(alert())).json()["results"]
    assert result["outcome"] == "no_canary"
    live_release.refresh_from_db()
    assert live_release.status == ReleaseStatus.LIVE  # a firing alert never touches the stable


@pytest.mark.parametrize("token,scheme", [(None, "Bearer"), ("", "Bearer"), ("wrong", "Bearer"),
                                          (TOKEN + "x", "Bearer"), (TOKEN, "Basic")])
def test_missing_or_wrong_token_is_401_and_nothing_happens(canary, token, scheme):
    response = post(webhook(alert()), token=token, scheme=scheme)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "Authorization: Bearer <token> is missing or wrong"
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.GRAY and not AlertEvent.objects.exists()


def test_receiver_without_a_token_configured_is_closed(canary, settings):
    settings.ROLLGATE_ALERTMANAGER_TOKEN = ""
    response = post(webhook(alert()), token="")
    assert response.status_code == 403 and "ROLLGATE_ALERTMANAGER_TOKEN is not set" in response.json()["detail"]


@pytest.mark.parametrize("mutate,field", [
    (lambda body: body["alerts"][0].update(status="pending"), "alerts"),
    (lambda body: body["alerts"][0].pop("labels"), "alerts"),
    (lambda body: body.update(alerts="not a list"), "alerts"),
    (lambda body: body.pop("alerts"), "alerts"),
])
def test_malformed_webhook_is_400_naming_the_field(canary, mutate, field):
    body = webhook(alert())
    mutate(body)
    response = post(body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.GRAY


@pytest.mark.parametrize("value,rule", [("bad\u0000label", "NUL"), ("x" * 70000, "65536")])
def test_hostile_strings_in_labels_are_400(canary, value, rule):
    body = webhook(alert(service=value))
    response = post(body)
    assert response.status_code == 400 and rule in response.content.decode()
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.GRAY and not AlertEvent.objects.exists()
