"""Single sign-on through the browser: Rollgate's login page sends the person to a real OpenID Connect provider
(django-oidc-provider, started by the test on 127.0.0.1), they sign in there and come back logged in with the
Rollgate roles their groups map to. Local accounts keep working, and an SSO identity never takes one over."""
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings

from releases.models import AuditEvent
from tests.conftest import make_user
from tests.e2e.conftest import CHROMIUM_ARGS, database_url, free_port, log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID, CLIENT_SECRET = "rollgate-e2e", "idp-client-secret-4471"
ROLE_MAP = '{"release-managers": "release_manager", "sre": "ops"}'


def _wait(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within 30 s")
            time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture
def sso(django_db_setup, chromium_path):
    """(rollgate_url, idp_url): the identity provider and a Rollgate (uvicorn, test settings) configured for it."""
    idp_port, rollgate_port = free_port(), free_port()
    idp_url, rollgate_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{rollgate_port}"
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / "sso-e2e.log", "a")
    idp = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "oidc_idp" / "serve.py"), "--port", str(idp_port),
         "--redirect-uri", f"{rollgate_url}/oidc/callback/", "--client-id", CLIENT_ID,
         "--client-secret", CLIENT_SECRET, "--user", "alice:idp-pw-alice:release-managers,staff",
         "--user", "carol:idp-pw-carol:contractors", "--user", "rm:idp-pw-rm:sre"],
        cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        stdout=log, stderr=subprocess.STDOUT)
    oidc = f"{idp_url}/openid"
    env = {**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
           "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(),
           "REDIS_URL": django_settings.REDIS_URL, "PYTHONUNBUFFERED": "1",
           "OIDC_RP_CLIENT_ID": CLIENT_ID, "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
           "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{oidc}/authorize", "OIDC_OP_TOKEN_ENDPOINT": f"{oidc}/token",
           "OIDC_OP_USER_ENDPOINT": f"{oidc}/userinfo", "OIDC_OP_JWKS_ENDPOINT": f"{oidc}/jwks",
           "ROLLGATE_OIDC_PROVIDER_NAME": "Example IdP", "ROLLGATE_OIDC_ROLE_MAP": ROLE_MAP}
    web = subprocess.Popen([sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                            "--port", str(rollgate_port), "--no-access-log", "--log-level", "warning"],
                           cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(f"{idp_url}/openid/.well-known/openid-configuration", idp, "the identity provider")
        _wait(f"{rollgate_url}/api/health/live", web, "uvicorn")
        yield rollgate_url, idp_url
    finally:
        _stop(web)
        _stop(idp)
        log.close()


@pytest.fixture
def page_at(browser):
    contexts = []

    def make(base_url):
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in_at_idp(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.click("#sso-login")  # "Log in with Example IdP"
    page.wait_for_selector("#idp-username")  # on the identity provider now
    page.fill("#idp-username", username)
    page.fill("#idp-password", password)
    page.click("#idp-submit")


def test_sso_login_maps_groups_to_roles(sso, page_at):
    rollgate_url, idp_url = sso
    page = page_at(rollgate_url)
    page.goto("/login/")
    assert page.inner_text("#sso-login") == "Log in with Example IdP"
    sign_in_at_idp(page, "alice", "idp-pw-alice")
    page.wait_for_selector("#live-status")  # back on Rollgate, logged in, on the fleet page
    assert page.url.startswith(rollgate_url)
    screenshot(page, "sso-logged-in-release-manager")
    from django.contrib.auth import get_user_model

    alice = get_user_model().objects.get(username="alice")
    assert not alice.has_usable_password() and alice.email == "alice@example.com"
    assert set(alice.groups.values_list("name", flat=True)) == {"release_manager"}  # "staff" maps to nothing
    audit = AuditEvent.objects.get(action="user.roles_changed", object_id=str(alice.pk))
    assert audit.actor_name == "sso" and audit.details["added"] == ["release_manager"]


def test_sso_user_without_a_mapped_group_gets_no_role(sso, page_at):
    rollgate_url, _ = sso
    page = page_at(rollgate_url)
    sign_in_at_idp(page, "carol", "idp-pw-carol")
    page.wait_for_url(f"{rollgate_url}/**")
    from django.contrib.auth import get_user_model

    carol = get_user_model().objects.get(username="carol")
    assert carol.groups.count() == 0  # logged in, but deny by default: no Rollgate role
    assert "no Rollgate role" in page.content()


def test_local_accounts_still_log_in_and_sso_never_takes_one_over(sso, page_at):
    rollgate_url, _ = sso
    make_user("rm", "release_manager")
    local = page_at(rollgate_url)
    log_in(local, "rm")  # the local password works as before
    page = page_at(rollgate_url)
    sign_in_at_idp(page, "rm", "idp-pw-rm")  # the IdP also has an "rm" (group sre -> ops)
    page.wait_for_url(f"{rollgate_url}/login/?sso=failed")
    assert "Single sign-on did not log you in" in page.content()
    from django.contrib.auth import get_user_model

    rm = get_user_model().objects.get(username="rm")
    assert set(rm.groups.values_list("name", flat=True)) == {"release_manager"}  # not turned into ops
