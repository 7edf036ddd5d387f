"""Helm-style values: merge order, image tag from the release, and errors that name the bad key."""

from __future__ import annotations

import pytest

from deploy.targets.values import ValuesError, deep_merge, load_values_yaml, merge_values, parse_quantity

from .conftest import BASE_VALUES

BASE_YAML = """
replicaCount: 2
image:
  repository: registry.mycorp.com/agent/agent-core
  tag: v3.3.1
resources:
  limits: {cpu: 1, memory: 1Gi}
  requests: {cpu: 500m, memory: 512Mi}
env:
  - name: AGENT_ENV
    value: production
service:
  type: ClusterIP
  port: 8080
"""


def test_environment_values_override_base_and_release_tag_wins():
    base = load_values_yaml(BASE_YAML, source="values.yaml")
    prod = load_values_yaml("replicaCount: 3\nresources:\n  limits:\n    memory: 2Gi\n", source="values-prod.yaml")

    merged = merge_values(base, prod, image_tag="v3.3.0", overlay_source="values-prod.yaml")

    assert merged["replicaCount"] == 3
    assert merged["resources"] == {"limits": {"cpu": 1, "memory": "2Gi"}, "requests": {"cpu": "500m", "memory": "512Mi"}}
    assert merged["image"] == {"repository": "registry.mycorp.com/agent/agent-core", "tag": "v3.3.0"}
    assert base["replicaCount"] == 2  # inputs are not modified


def test_lists_are_replaced_and_null_removes_a_key():
    merged = deep_merge({"env": [{"name": "A", "value": "1"}], "nodeSelector": {"pool": "x"}},
                       {"env": [{"name": "B", "value": "2"}], "nodeSelector": None})
    assert merged == {"env": [{"name": "B", "value": "2"}]}


@pytest.mark.parametrize(
    ("overlay", "path", "rule"),
    [
        ({"replicaCount": -1}, "replicaCount", "non-negative integer"),
        ({"resources": {"limits": {"memory": "2Gx"}}}, "resources.limits.memory", "Kubernetes quantity"),
        ({"resources": {"requests": {"cpu": "-1"}}}, "resources.requests.cpu", "must not be negative"),
        ({"image": {"tga": "v1"}}, "image.tga", "unknown key; allowed here: repository, tag, pullPolicy"),
        ({"replicas": 3}, "replicas", "unknown key"),
        ({"service": {"type": "Ingress"}}, "service.type", "ClusterIP, NodePort, LoadBalancer"),
        ({"service": {"port": 70000}}, "service.port", "from 1 to 65535"),
        ({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "env[1].name", "duplicates"),
        ({"env": [{"name": "PORT", "value": 8080}]}, "env[0].value", "must be a string"),
        ({"secretRefs": ["Agent_Secret"]}, "secretRefs[0]", "Secret name"),
        ({"resourceQuota": {"gpus": "2"}}, "resourceQuota.gpus", "unknown key"),
        ({"configMap": {"data": {"RETRIES": 3}}}, "configMap.data.RETRIES", "must be a string"),
    ],
)
def test_invalid_environment_values_name_the_file_and_path(overlay, path, rule):
    with pytest.raises(ValuesError) as caught:
        merge_values(BASE_VALUES, overlay, image_tag="v3.3.0", overlay_source="values-prod.yaml")

    assert caught.value.path == path
    assert caught.value.source == "values-prod.yaml"
    assert rule in caught.value.rule
    assert str(caught.value).startswith(f"values-prod.yaml: {path}: ")


def test_requests_above_limits_are_refused_after_merging():
    with pytest.raises(ValuesError) as caught:
        merge_values(BASE_VALUES, {"resources": {"requests": {"memory": "2Gi"}}}, image_tag="v1")
    assert (caught.value.path, caught.value.source) == ("resources.requests.memory", "merged values")


def test_missing_required_keys_are_reported_after_merging():
    with pytest.raises(ValuesError) as caught:
        merge_values({"image": {"repository": "registry.example.com/a"}, "replicaCount": 1}, {}, image_tag="v1")
    assert caught.value.path == "service"


def test_bad_release_tag_is_refused():
    with pytest.raises(ValuesError, match="image.tag"):
        merge_values(BASE_VALUES, {}, image_tag="v1 beta")


def test_non_mapping_yaml_is_refused_with_its_source():
    with pytest.raises(ValuesError, match="values-dev.yaml: \\(root\\)"):
        load_values_yaml("- a\n- b\n", source="values-dev.yaml")
    with pytest.raises(ValueError, match="values-dev.yaml: line 2: not valid YAML"):
        load_values_yaml("a: 1\n b: : 2\n", source="values-dev.yaml")


@pytest.mark.parametrize(("text", "amount"), [("500m", "0.5"), ("2Gi", str(2 * 1024**3)), ("1", "1"), (2, "2"), ("1e3", "1000")])
def test_quantities_parse_like_kubernetes(text, amount):
    assert parse_quantity(text) == __import__("decimal").Decimal(amount)
