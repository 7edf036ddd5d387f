"""No credential (token, kubeconfig contents) appears in stage logs, audit events, live events, API output,
worker logs, repr or the database in clear text — on success and on an authentication failure."""
import asyncio
import json
import logging
import threading

import pytest
import yaml
from channels.layers import get_channel_layer
from django.contrib import admin
from django.db import connection

from deploy.models import TargetCredential
from releases import events
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import AuditEvent
from tests.conftest import client_for
from tests.deploy.conftest import FAST_TARGET, TOKEN, promote_and_deploy

pytestmark = pytest.mark.django_db(transaction=True)

WRONG_TOKEN = "sa-token-wrong-5e0c1f9a7b3d4e2a8c6f0b1d9e7a3c5b"
CLIENT_KEY = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tZmFrZS1rZXktZm9yLXRlc3Rz"


def kubeconfig(host: str, token: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "rollgate",
        "clusters": [{"name": "fake", "cluster": {"server": host}}],
        "users": [{"name": "deployer", "user": {"token": token, "client-key-data": CLIENT_KEY}}],
        "contexts": [{"name": "rollgate", "context": {"cluster": "fake", "user": "deployer"}}],
    })


class LiveEvents:
    """A channel in the real Redis channel layer that joins groups and collects what arrives.

    The pub/sub layer ties a channel to the event loop that made it, so one private loop (in a thread) does all
    of this channel's work."""

    def __init__(self):
        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.channel = self._call(self.layer.new_channel())
        self.received: list[dict] = []

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=15)

    def join(self, *groups: str) -> None:
        for group in groups:
            self._call(self.layer.group_add(group, self.channel))

    def drain(self) -> list[dict]:
        async def receive_all():
            while True:
                try:
                    self.received.append(await asyncio.wait_for(self.layer.receive(self.channel), 0.5))
                except asyncio.TimeoutError:
                    return

        self._call(receive_all())
        return self.received

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def test_no_credential_appears_in_logs_events_or_api_output(environments, cluster, service, ops, rm, auditor,
                                                           make_release, eager_tasks,
                                                           stage_log, caplog):
    caplog.set_level(logging.DEBUG)
    live = LiveEvents()
    live.join(events.FLEET_GROUP, events.AUDIT_GROUP)
    ops_api = client_for(ops)
    outputs = []
    good_config, bad_config = kubeconfig(cluster.host, TOKEN), kubeconfig(cluster.host, WRONG_TOKEN)
    secrets = [TOKEN, WRONG_TOKEN, CLIENT_KEY]
    for name, body in (("staging", {"kind": "token", "host": cluster.host, "token": TOKEN}),
                       ("test", {"kind": "kubeconfig", "kubeconfig": good_config}),
                       ("dev", {"kind": "kubeconfig", "kubeconfig": bad_config})):
        env = environments[name]
        env.deploy_target = DeployTargetKind.KUBERNETES
        env.target_settings = FAST_TARGET
        env.save(update_fields=["deploy_target", "target_settings"])
        response = ops_api.put(f"/api/environments/{name}/credentials/", body, format="json")
        assert response.status_code == 200, response.content
        outputs.append(response.content.decode())
    ops_api.put("/api/services/agent-infer/values/", {"text": "replicaCount: 2\n"}, format="json")

    # Deploy where the credentials work (token and kubeconfig), including a failed rollout and its rollback.
    for env in ("staging", "test"):
        promote_and_deploy(make_release("v1.0.0" if env == "staging" else "dev-latest", env), rm, stage_log)
    cluster.fail_image("v1.1.0", "crashloop", ["INFO boot", "panic: boom"])
    failed = make_release("v1.1.0", "staging")
    live.join(events.release_group(failed.pk))
    assert promote_and_deploy(failed, rm, stage_log, full=True) == "failed"
    # And where the cluster refuses the credentials: the error reaches the stage log and the release.
    refused = make_release("dev-latest", "dev")
    assert promote_and_deploy(refused, rm, stage_log) == "failed"
    refused.refresh_from_db()
    assert refused.status == ReleaseStatus.FAILED and "HTTP 401" in refused.status_reason

    for url in ["/api/environments/staging/credentials/", "/api/environments/test/credentials/",
                "/api/environments/dev/credentials/", "/api/services/agent-infer/environments/staging/revisions/",
                "/api/services/agent-infer/environments/staging/revisions/1/",
                "/api/services/agent-infer/environments/test/revisions/1/",
                "/api/services/agent-infer/environments/staging/values/", "/api/audit-events/?limit=1000",
                f"/api/releases/{failed.pk}/", f"/api/releases/{refused.pk}/", "/api/environments/"]:
        response = client_for(auditor).get(url)
        assert response.status_code == 200, url
        outputs.append(response.content.decode())
    audit_rows = json.dumps(list(AuditEvent.objects.values()), default=str)
    received = live.drain()
    live.close()
    credential_reprs = [repr(c) + str(c) for c in TargetCredential.objects.all()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT ciphertext FROM pipelines_targetcredential")
        stored = b"".join(bytes(row[0]) for row in cursor.fetchall())

    # The checks are only meaningful if each channel carried what we look through.
    assert any("rollback to" in line or "rolling back" in line for line in stage_log)
    assert any(e.get("event", {}).get("type") == "deploy.revision" for e in received)
    assert "environment.credentials_set" in audit_rows
    haystacks = {"stage log": "\n".join(stage_log), "audit rows": audit_rows, "live events": json.dumps(received),
                 "api output": "\n".join(outputs), "worker/app logs": caplog.text, "repr": "\n".join(credential_reprs)}
    for secret in secrets:
        for where, text in haystacks.items():
            assert secret not in text, f"a credential leaked into the {where}"
        assert secret.encode() not in stored
    assert "kubeconfig" in outputs[1] and "clusters" not in "\n".join(outputs)
    assert TargetCredential not in admin.site._registry
