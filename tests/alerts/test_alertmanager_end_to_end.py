"""A real Prometheus rule fires, a real Alertmanager (Debian's prometheus-alertmanager) calls Rollgate's receiver
with its bearer token, the canary pauses; when the rule stops firing the resolved alert is recorded and the canary
stays paused."""
import time

import pytest

from alerts.models import AlertEvent
from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from releases.services import Actor, release_promote
from tests.monitoring import AlertmanagerProcess, PrometheusWithRules, wait_until

TOKEN = "am-e2e-token-51c2"
FIRING_S = 12


@pytest.fixture
def canary(transactional_db, live_release, make_release, rm):
    release = make_release("v1.2.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.GRAY
    return release


def test_prometheus_rule_through_alertmanager_pauses_the_canary_then_records_resolution(
        canary, live_server, settings, tmp_path):
    settings.ROLLGATE_ALERTMANAGER_TOKEN = TOKEN
    settings.ROLLGATE_ALERTMANAGER_ACTIONS = {"prod": "rollback", "*": "pause"}
    fire_until = int(time.time()) + FIRING_S
    rules = tmp_path / "canary.rules.yml"
    # Fires for FIRING_S seconds (the expression is empty afterwards), then Prometheus sends it resolved.
    rules.write_text(f"""
groups:
  - name: canary
    rules:
      - alert: CanaryErrorRatioHigh
        expr: vector(time()) < {fire_until}
        labels: {{service: agent-infer, env: staging, version: v1.2.0, severity: page}}
        annotations:
          summary: "agent-infer v1.2.0 errors above 5 % in staging"
""")
    alertmanager = AlertmanagerProcess()
    prometheus = PrometheusWithRules()
    try:
        alertmanager.start(webhook_url=f"{live_server.url}/api/alerts/alertmanager", bearer_token=TOKEN)
        prometheus.start(rule_files=[rules], alertmanager_url=alertmanager.url)

        def paused():
            return Release.objects.filter(pk=canary.pk, status=ReleaseStatus.PAUSED).exists()

        wait_until(paused, timeout_s=40, what=lambda: f"canary paused (alerts: {list(AlertEvent.objects.values('outcome', 'detail'))}; "
                   f"alertmanager log: {alertmanager.log}; prometheus log: {prometheus.log})")
        pause = AuditEvent.objects.get(release=canary, action="release.pause")
        assert pause.actor_name == "alertmanager"
        assert pause.reason == "agent-infer v1.2.0 errors above 5 % in staging"

        wait_until(lambda: AlertEvent.objects.filter(status="resolved").exists(), timeout_s=FIRING_S + 40,
                   what="resolved alert delivered")
        resolved = AlertEvent.objects.filter(status="resolved").first()
        assert (resolved.outcome, resolved.release_id, resolved.alertname) == (
            "recorded", canary.pk, "CanaryErrorRatioHigh")
        canary.refresh_from_db()
        assert canary.status == ReleaseStatus.PAUSED  # never resumes by itself
        assert AuditEvent.objects.filter(release=canary, action="alert.resolved").count() >= 1
    finally:
        prometheus.stop()
        alertmanager.stop()
