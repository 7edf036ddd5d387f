"""Prometheus access for the SLA gate: TLS verified by default (a private CA by bundle), bearer token or basic auth,
extra headers, and one Prometheus per environment. Against a real Prometheus serving TLS with basic auth, and a
loopback recorder where what matters is what Rollgate sends (Prometheus itself ignores bearer tokens)."""
import json
import threading
import warnings
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from releases.services import Actor, release_promote
from sla import services
from sla.access import prometheus_access, prometheus_client_for
from sla.prometheus import PrometheusClient, PrometheusUnavailable
from tests.monitoring import PrometheusWithRules
from tests.tls_material import make_tls_files

NOW = datetime.now(timezone.utc)
PASSWORD = "scrape-pw-93d1"


def bcrypt_hash(password: str) -> str:
    """Prometheus' web config wants a bcrypt hash; the standard library's crypt (deprecated, still in 3.11) makes
    one through the system's libcrypt, so no extra dependency is needed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))


@pytest.fixture(scope="module")
def tls_prometheus(tmp_path_factory):
    """A real Prometheus serving HTTPS with a certificate from a private CA, and basic auth (user rollgate)."""
    files = make_tls_files(tmp_path_factory.mktemp("tls"))
    prometheus = PrometheusWithRules()
    prometheus.start(web_config={"tls_server_config": {"cert_file": str(files.cert_pem),
                                                       "key_file": str(files.key_pem)},
                                 "basic_auth_users": {"rollgate": bcrypt_hash(PASSWORD)}},
                     ready_request={"verify": str(files.ca_pem), "auth": ("rollgate", PASSWORD)})
    yield prometheus, files
    prometheus.stop()


def value_of(client: PrometheusClient, query: str) -> float:
    try:
        [sample] = client.instant(query, window_s=None, at=NOW)
        return sample.reading.value
    finally:
        client.close()


def test_tls_is_verified_by_default_and_a_private_ca_needs_its_bundle(tls_prometheus):
    prometheus, files = tls_prometheus
    with pytest.raises(PrometheusUnavailable, match="TLS verification of Prometheus .* failed"):
        value_of(PrometheusClient(prometheus.url, basic_auth=("rollgate", PASSWORD), timeout_s=3), "vector(1)")
    client = PrometheusClient(prometheus.url, ca_bundle=str(files.ca_pem), basic_auth=("rollgate", PASSWORD))
    assert value_of(client, "vector(42.5)") == 42.5


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_turning_verification_off_is_explicit(tls_prometheus):
    prometheus, _ = tls_prometheus
    client = PrometheusClient(prometheus.url, verify_tls=False, basic_auth=("rollgate", PASSWORD))
    assert value_of(client, "vector(7)") == 7


def test_wrong_basic_auth_says_the_credentials_were_refused_without_showing_them(tls_prometheus):
    prometheus, files = tls_prometheus
    client = PrometheusClient(prometheus.url, ca_bundle=str(files.ca_pem), basic_auth=("rollgate", "not-it-5a"))
    with pytest.raises(PrometheusUnavailable) as raised:
        value_of(client, "vector(1)")
    assert "refused Rollgate's credentials (HTTP 401)" in str(raised.value)
    assert "not-it-5a" not in str(raised.value) and "not-it-5a" not in repr(client)


def test_environment_settings_reach_the_real_prometheus(tls_prometheus, settings, tmp_path):
    prometheus, files = tls_prometheus
    password_file = tmp_path / "prom-password"
    password_file.write_text(PASSWORD + "\n")
    settings.PROMETHEUS_URL = "http://127.0.0.1:1"  # the default is elsewhere: prod has its own Prometheus
    settings.ROLLGATE_PROMETHEUS_ENVIRONMENTS = {"prod": {
        "url": prometheus.url, "ca_bundle": str(files.ca_pem), "username": "rollgate",
        "password_file": str(password_file)}}
    assert value_of(prometheus_client_for("prod", timeout_s=3), "vector(3.25)") == 3.25
    with pytest.raises(PrometheusUnavailable, match="unreachable"):
        value_of(prometheus_client_for("staging", timeout_s=1), "vector(1)")


# --- what Rollgate sends: a loopback recorder answering like Prometheus ---------------------------------------


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, value: float | None):
        """Answers every query with one unlabelled sample of `value`, or an empty vector (None)."""
        self.value = value
        self.seen: list[dict] = []
        super().__init__(("127.0.0.1", 0), _RecorderHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _RecorderHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.seen.append({"headers": dict(self.headers), "request": self.path + " " + body})
        value = self.server.value
        result = [] if value is None else [{"metric": {}, "value": [0, str(value)]}]
        answer = {"status": "success", "data": {"resultType": "vector", "result": result}}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorders():
    made = [Recorder(11.0), Recorder(22.0)]
    yield made
    for recorder in made:
        recorder.stop()


def test_bearer_token_and_extra_headers_are_sent(recorders, settings, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("tok-prod-8841\n")
    settings.PROMETHEUS_HEADERS = {"X-Scope-OrgID": "platform"}
    settings.ROLLGATE_PROMETHEUS_ENVIRONMENTS = {
        "prod": {"url": recorders[0].url, "bearer_token_file": str(token_file), "headers": {"X-Team": "agents"}},
        "staging": {"url": recorders[1].url, "headers": {"X-Scope-OrgID": "staging-tenant"}}}
    assert value_of(prometheus_client_for("prod", timeout_s=3), "vector(1)") == 11.0
    assert value_of(prometheus_client_for("staging", timeout_s=3), "vector(1)") == 22.0
    prod_headers, staging_headers = recorders[0].seen[0]["headers"], recorders[1].seen[0]["headers"]
    assert prod_headers["Authorization"] == "Bearer tok-prod-8841"
    assert (prod_headers["X-Scope-OrgID"], prod_headers["X-Team"]) == ("platform", "agents")
    assert "Authorization" not in staging_headers and staging_headers["X-Scope-OrgID"] == "staging-tenant"
    assert "tok-prod-8841" not in repr(prometheus_access("prod"))


def test_a_misconfigured_environment_fails_its_queries_with_the_reason(settings):
    settings.ROLLGATE_PROMETHEUS_ENVIRONMENTS = {"prod": {"url": "http://127.0.0.1:1", "token": "x"}}
    with pytest.raises(PrometheusUnavailable, match=r"misconfigured: .*unknown keys \['token'\]"):
        prometheus_client_for("prod", timeout_s=1).instant_many({"a": "vector(1)"}, window_s=None, at=NOW)


@pytest.mark.django_db(transaction=True)
def test_the_gate_asks_each_environment_its_own_prometheus(recorders, settings, make_release, rm):
    for recorder in recorders:
        recorder.value = None  # no series: the gate waits for data, and we look at who was asked what
    settings.PROMETHEUS_URL = "http://127.0.0.1:1"
    settings.ROLLGATE_PROMETHEUS_ENVIRONMENTS = {"staging": {"url": recorders[0].url},
                                                 "test": {"url": recorders[1].url}}
    for env, stable_tag, canary_tag in (("staging", "v1.0.0", "v1.1.0"), ("test", "v1.2.0", "v1.3.0")):
        stable = make_release(stable_tag, env)
        release_promote(actor=Actor.of(rm), release_id=stable.pk)
        canary = make_release(canary_tag, env)
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
    evaluations = services.gate_evaluate(services.gate_collect(), at=NOW)
    assert len(evaluations) == 2 and all(not e.canary.error for e in evaluations)
    staging_queries = " ".join(seen["request"] for seen in recorders[0].seen)
    test_queries = " ".join(seen["request"] for seen in recorders[1].seen)
    assert "staging" in staging_queries and "%22test%22" not in staging_queries
    assert "%22test%22" in test_queries and "staging" not in test_queries
