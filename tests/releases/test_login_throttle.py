"""Password guessing is throttled on every way in (/login/, /admin/login/, the token endpoint) by django-axes:
per username and per address, audited, unlockable by an admin; X-Forwarded-For counts only from trusted proxies."""
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from config.client_address import client_address
from releases.models import AuditEvent
from tests.conftest import make_user

LIMIT = 5


@pytest.fixture(autouse=True)
def fresh_throttles(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    cache.clear()  # the token endpoint's DRF rate counts live in the shared cache
    yield
    cache.clear()


def login_page(client, username, password, path="/login/", **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def token(client, username, password, **extra):
    return client.post("/api/auth/token/", {"username": username, "password": password}, format="json", **extra)


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_the_right_password_after_too_many_wrong_ones_is_refused(path, rm):
    rm.is_staff = True
    rm.save()
    client = Client()
    for _ in range(LIMIT - 1):
        assert login_page(client, "rm", "guess", path).status_code == 200  # the form again, with an error
    assert login_page(client, "rm", "guess", path).status_code == 429  # the one that locks out
    response = login_page(client, "rm", "pw-rm", path)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    lockout = AuditEvent.objects.filter(action="auth.lockout").earliest("id")
    assert (lockout.actor_name, lockout.details["username"], lockout.details["ip_address"]) == (
        "login-throttle", "rm", "127.0.0.1")


def test_the_token_endpoint_locks_out_too_and_ignores_forged_forwarded_for(rm):
    client = APIClient()
    for attempt in range(LIMIT - 1):
        response = token(client, "rm", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}")
        assert response.status_code == 400
    token(client, "rm", "guess")
    response = token(client, "rm", "pw-rm", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert response.status_code == 429, response.content
    assert "token" not in response.json() and "locked out" in response.json()["detail"]


def test_an_address_guessing_many_usernames_is_locked_out(rm, qa, ops):
    make_user("victim")
    client = Client()
    for attempt in range(LIMIT):
        login_page(client, f"user{attempt}", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}")
    assert login_page(client, "victim", "pw-victim").status_code == 429  # same REMOTE_ADDR, new username
    # From another address the (never guessed) user still logs in.
    assert login_page(Client(REMOTE_ADDR="192.0.2.10"), "qa", "pw-qa").status_code == 302


def test_forwarded_for_is_believed_from_a_trusted_proxy_only(settings, rm, qa):
    settings.ROLLGATE_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    assert client_address({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 10.1.2.3"}) \
        == "198.51.100.7"
    assert client_address({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}) == "192.0.2.1"
    assert client_address({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "not-an-ip"}) == "127.0.0.1"
    proxy = Client()
    for attempt in range(LIMIT):
        login_page(proxy, f"user{attempt}", "guess", HTTP_X_FORWARDED_FOR="203.0.113.66")
    # Behind the proxy, another client address is another address: qa logs in; the guesser stays locked.
    assert login_page(Client(), "qa", "pw-qa", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302
    assert login_page(Client(), "rm", "pw-rm", HTTP_X_FORWARDED_FOR="203.0.113.66").status_code == 429


def test_an_admin_unlocks_a_locked_out_user(rm, db):
    admin_user = get_user_model().objects.create_superuser("root", password="pw-root-long")
    for _ in range(LIMIT):
        login_page(Client(REMOTE_ADDR="192.0.2.20"), "rm", "guess")
    assert login_page(Client(REMOTE_ADDR="192.0.2.21"), "rm", "pw-rm").status_code == 429
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and "rm" in page.content.decode()

    call_command("axes_reset_username", "rm")

    assert login_page(Client(REMOTE_ADDR="192.0.2.21"), "rm", "pw-rm").status_code == 302
