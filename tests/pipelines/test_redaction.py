"""Stage logs and notifications never carry a secret: one case per secret shape in notify.SECRET_SHAPES."""
import pytest

from pipelines.integrations.notify import SECRET_SHAPES, redact

CASES = {
    "json-quoted": ('{"password": "hunter2", "user": "bob"}', '{"password": "[redacted]", "user": "bob"}'),
    "key=value": ("export API_KEY=xyz123 && run", "export API_KEY=[redacted] && run"),
    "--flag value": ("deploy --password hunter2 --verbose", "deploy --password [redacted] --verbose"),
    "-p password": ("mysql -u root -p hunter2 app", "mysql -u root -p [redacted] app"),
    "authorization": ('curl -H "Authorization: Basic dXNlcjpwdw=="', 'curl -H "Authorization: Basic [redacted]"'),
    "bearer": ("sent Bearer abcdefghijklmnop to the api", "sent Bearer [redacted] to the api"),
    "url credentials": ("git clone https://bob:pw@gitlab.example.com/x.git",
                        "git clone https://[redacted]@gitlab.example.com/x.git"),
    # The PEM markers are assembled so that no scanner mistakes this fake two-line key for a committed secret.
    "private key": ("key: -----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n-----END RSA " + "PRIVATE KEY----- done",
                    "key: [redacted private key] done"),
    "jwt": ("id_token eyJhbGciOiJI.eyJzdWIiOiIx.c2lnbmF0dXJl seen", "id_token [redacted] seen"),
    "token prefix": ("pushed with glpat-abcdefghijklmnop, ghp_abcdefghijklmnopqrstuv, AKIAABCDEFGHIJKLMNOP, "
                     "sk-abcdefghijklmnopqrstuvwx and rgat_abcdefghijklmnopqrstuvwxyz",
                     "pushed with [redacted], [redacted], [redacted], [redacted] and [redacted]"),
}


def test_every_shape_has_a_case():
    assert {name for name, _, _ in SECRET_SHAPES} == set(CASES)


@pytest.mark.parametrize("shape", sorted(CASES))
def test_secret_shape_is_redacted(shape):
    line, expected = CASES[shape]
    assert redact(line) == expected


@pytest.mark.parametrize("line", ["docker run -p 8080:80 agent", "step 3/7: COPY . /app", "tokens: 1534 used"])
def test_ordinary_build_lines_stay_readable(line):
    assert redact(line).split()[0] == line.split()[0]
    assert "8080:80" in redact(line) or "8080" not in line


def test_webhook_urls_and_signing_secrets_are_stored_encrypted(db, ops):
    from django.db import connection

    from pipelines.models import WebhookEndpoint
    from pipelines.services import webhook_endpoint_create
    from releases.services import Actor

    endpoint = webhook_endpoint_create(actor=Actor.of(ops), name="feishu", format="feishu", signing_secret="sig-s3cret",
                                       url="https://open.feishu.example/hook/tok-abcdef123456")
    with connection.cursor() as cursor:
        cursor.execute("SELECT url, signing_secret FROM pipelines_webhookendpoint WHERE id = %s", [endpoint.pk])
        url, secret = cursor.fetchone()
    assert "tok-abcdef123456" not in url and "sig-s3cret" not in secret
    assert url.startswith("sealed:v1:") and secret.startswith("sealed:v1:")
    fresh = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (fresh.url, fresh.signing_secret) == ("https://open.feishu.example/hook/tok-abcdef123456", "sig-s3cret")
    assert fresh.masked_url == "https://open.feishu.example/…"


def test_one_url_mask_for_every_webhook_model():
    from notifications.models import Subscription
    from pipelines.models import WebhookEndpoint
    from releases.redaction import mask_url

    url = "https://user:pa55@hooks.example.com:8443/services/T0/B0/secret?key=abc"
    assert mask_url(url) == "https://hooks.example.com:8443/…"
    assert mask_url("https://hooks.example.com") == "https://hooks.example.com/"  # nothing hidden, nothing implied
    assert Subscription(url=url).masked_url == WebhookEndpoint(url=url).masked_url == mask_url(url)
