"""The Prometheus alert rules and the Grafana dashboard in monitoring/ are valid, name only metrics /metrics
really serves, and a real Prometheus loads the rules while scraping a running Rollgate."""
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from releases.services import Actor, release_promote
from tests.monitoring import PrometheusWithRules, require, wait_until
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "rollgate-alerts.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "rollgate-dashboard.json"
METRIC = re.compile(r"\brollgate_[a-z_]+")


def served_names() -> set[str]:
    """Every series name /metrics can serve, also for families with no sample yet (no rollback so far)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    text = APIClient().get("/metrics").content.decode()
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in suffixes.get(family.type, [""])}


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules():
    result = subprocess.run([require("promtool", "prometheus"), "check", "rules", str(RULES)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_exprs())} rules found" in result.stdout


def test_every_alert_says_what_happened():
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["summary"] and rule["labels"]["severity"] in ("page", "ticket", "info")


@pytest.mark.django_db
def test_rules_and_dashboard_name_only_metrics_that_exist(live_release):
    served = served_names()
    missing = sorted({name for expr in rule_exprs() + dashboard_exprs() for name in METRIC.findall(expr)} - served)
    assert missing == []
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "rollgate-overview" and len(dashboard["panels"]) >= 8
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_rollgate_and_evaluates_the_rules(live_server, live_release, make_release, rm):
    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    prometheus = PrometheusWithRules()
    try:
        prometheus.start(rule_files=[RULES], targets=[live_server.url.removeprefix("http://")])
        releases = wait_until(lambda: prometheus.query('rollgate_releases{job="rollgate",status="gray"}'),
                              timeout_s=30, what=lambda: f"a scrape of Rollgate (prometheus log: {prometheus.log})")
        assert releases[0]["metric"]["environment"] == "staging" and releases[0]["value"][1] == "1"
        assert prometheus.query('up{job="rollgate"}')[0]["value"][1] == "1"

        def evaluated():
            groups = prometheus.rules()
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules) \
                else None

        rules = wait_until(evaluated, timeout_s=30, what="every rule evaluated")
        assert len(rules) == len(rule_exprs())
        assert {rule["health"] for rule in rules} == {"ok"}, [(r["name"], r.get("lastError")) for r in rules]
        assert not [rule for rule in rules if rule["state"] == "firing" and rule["name"] == "RollgateDown"]
    finally:
        prometheus.stop()
