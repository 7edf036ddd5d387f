"""Credentials are data, never a way to run programs or read files on the worker."""
import yaml

from deploy.models import TargetCredential
from tests.conftest import client_for

URL = "/api/environments/staging/credentials/"


def kubeconfig(user: dict, cluster: dict | None = None) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster or {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    })


def test_kubeconfig_that_would_run_a_plugin_or_read_a_file_is_refused(environments, ops, settings):
    settings.ROLLGATE_CREDENTIALS_KEY = "a-test-key-for-credentials-only"
    client = client_for(ops)
    for user, cluster in (({"exec": {"command": "/bin/sh", "args": ["-c", "touch /tmp/pwned"]}}, None),
                          ({"auth-provider": {"name": "gcp"}}, None),
                          ({"tokenFile": "/etc/shadow"}, None),
                          ({"client-certificate": "/etc/ssl/a.pem", "client-key": "/etc/ssl/a.key"}, None),
                          ({"token": "t0ken-value"}, {"server": "https://127.0.0.1:6443",
                                                       "certificate-authority": "/etc/passwd"})):
        response = client.put(URL, {"kind": "kubeconfig", "kubeconfig": kubeconfig(user, cluster)}, format="json")
        assert response.status_code == 400, response.content
        assert "does not run credential plugins or read files" in response.json()["detail"]
    assert not TargetCredential.objects.exists()
    embedded = client.put(URL, {"kind": "kubeconfig", "kubeconfig": kubeconfig({"token": "t0ken-value"})},
                          format="json")
    assert embedded.status_code == 200, embedded.content


def test_secret_files_are_only_read_from_the_mounted_secret_directories(environments, ops, settings, tmp_path):
    settings.ROLLGATE_CREDENTIALS_KEY = "a-test-key-for-credentials-only"
    settings.ROLLGATE_CREDENTIAL_FILE_DIRS = [str(tmp_path)]
    client = client_for(ops)
    for path in ("/etc/passwd", f"{tmp_path}/../escape", "relative/token"):
        response = client.put(URL, {"kind": "token_file", "host": "https://127.0.0.1:6443", "secret_path": path},
                              format="json")
        assert response.status_code == 400 and "secret_path" in response.json()["errors"], path
    (tmp_path / "token").write_text("t0ken-value")
    response = client.put(URL, {"kind": "token_file", "host": "https://127.0.0.1:6443",
                                "secret_path": str(tmp_path / "token")}, format="json")
    assert response.status_code == 200, response.content


def test_inline_kubeconfig_text_naming_a_file_is_not_read_from_disk(environments, ops, settings, tmp_path):
    settings.ROLLGATE_CREDENTIALS_KEY = "a-test-key-for-credentials-only"
    stolen = tmp_path / "config"
    stolen.write_text(kubeconfig({"token": "someone-elses-token"}))
    response = client_for(ops).put(URL, {"kind": "kubeconfig", "kubeconfig": str(stolen)}, format="json")
    assert response.status_code == 400 and "kubeconfig" in response.json()["errors"]
