"""Credentials authenticate against the API but never show up in logs, errors, repr or cluster objects."""

from __future__ import annotations

import json

import pytest

from deploy.targets.base import TargetError, deploy_revision
from deploy.targets.k8s_credentials import KubernetesCredentials
from deploy.targets.kubernetes import KubernetesTarget

from .conftest import TOKEN, revision_for, settings

CLIENT_KEY = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tZmFrZS1rZXktbWF0ZXJpYWw="


def kubeconfig_for(host: str, token: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "staging",
        "clusters": [{"name": "staging", "cluster": {"server": host}}],
        "users": [{"name": "deployer", "user": {"token": token}}],
        "contexts": [{"name": "staging", "context": {"cluster": "staging", "user": "deployer"}}],
    }


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


def test_kubeconfig_credentials_deploy_without_leaking_the_token(cluster, stage_log):
    credentials = KubernetesCredentials.from_kubeconfig(kubeconfig_for(cluster.host, TOKEN))
    target = KubernetesTarget(credentials, log=stage_log.append, settings=settings())
    cluster.fail_image("v3.3.1", "crashloop", [f"leaked env: TOKEN={TOKEN}"])  # even if the app prints it
    good = revision_for("v3.3.0")

    try:
        outcome = deploy_revision(target, revision_for("v3.3.1"), last_good=None, auto_rollback=True, log=stage_log.append)
        target.apply(good)
        target.watch_rollout(good)
    finally:
        target.close()

    assert outcome.status == "failed"
    everything = "\n".join(stage_log) + "\n".join(outcome.rollout.diagnostics)
    assert "leaked env: TOKEN=[redacted]" in everything
    assert_no_secret(everything, TOKEN)
    assert_no_secret(repr(target) + repr(credentials) + str(credentials), TOKEN, cluster.host.split("//")[1] + "@")
    # Nothing we wrote into the cluster (objects, events) carries the credential.
    stored = json.dumps([cluster.list(kind) for kind in ("namespaces", "configmaps", "deployments", "services", "events")])
    assert_no_secret(stored, TOKEN)


def test_wrong_token_fails_with_a_clean_message(cluster, stage_log):
    wrong = "wrong-token-0123456789abcdef"
    target = KubernetesTarget(KubernetesCredentials.from_token(cluster.host, wrong), log=stage_log.append, settings=settings())

    with pytest.raises(TargetError) as caught:
        target.apply(revision_for("v3.3.0"))
    target.close()

    message = str(caught.value)
    assert "HTTP 401" in message
    assert_no_secret(message + repr(caught.value) + "\n".join(stage_log), wrong, TOKEN)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_unreachable_api_names_the_host_but_not_the_token(stage_log):
    credentials = KubernetesCredentials.from_token("http://127.0.0.1:9", TOKEN)
    target = KubernetesTarget(credentials, log=stage_log.append, settings=settings(request_timeout_seconds=1))
    target._api._api_client.configuration.retries = 0

    with pytest.raises(TargetError, match="cannot reach the Kubernetes API at http://127.0.0.1:9") as caught:
        target.apply(revision_for("v3.3.0"))
    target.close()
    assert_no_secret(str(caught.value), TOKEN)


def test_credentials_repr_hides_kubeconfig_secrets(tmp_path):
    config = kubeconfig_for("https://k8s.example.internal:6443", TOKEN)
    config["users"][0]["user"] = {"client-key-data": CLIENT_KEY, "client-certificate-data": "Y2VydC1kYXRh"}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))

    credentials = KubernetesCredentials.from_kubeconfig(path)

    assert CLIENT_KEY in credentials.secret_values()
    assert_no_secret(repr(credentials) + credentials.describe(), CLIENT_KEY, TOKEN)
    assert "context staging" in credentials.describe()


def test_token_file_is_read_and_kept_out_of_repr(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    credentials = KubernetesCredentials.from_token_file("https://k8s.example.internal:6443", token_file)

    assert credentials.token == TOKEN
    assert_no_secret(repr(credentials), TOKEN)
    with pytest.raises(TargetError, match="cannot read credential file"):
        KubernetesCredentials.from_token_file("https://k8s", tmp_path / "missing")
