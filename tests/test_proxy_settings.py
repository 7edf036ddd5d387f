"""Behind a TLS-terminating proxy (an ingress): production settings believe X-Forwarded-Proto only from trusted
proxies, so HTTPS logins work through the proxy and a client cannot claim HTTPS itself. A real uvicorn with
production settings, its --forwarded-allow-ips from FORWARDED_ALLOW_IPS, on loopback."""
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import database_url, free_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "rollgate.example.com"


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """Production settings serve hashed static files from a manifest: collect them first, as the image does."""
    root = tmp_path_factory.mktemp("staticfiles")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY=secrets.token_urlsafe(50),
               ROLLGATE_CREDENTIALS_KEY=secrets.token_urlsafe(32), STATIC_ROOT=str(root), ALLOWED_HOSTS=HOST)
    done = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def production_server(django_db_setup, django_db_blocker, static_root):
    """start(**env) -> base URL of uvicorn running config.settings.production (secrets generated here)."""
    processes = []

    def start(**extra):
        port = free_port()
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        log = open(ROOT / "test-artifacts" / "proxy-uvicorn.log", "a")
        skip = {"DJANGO_SETTINGS_MODULE", "ROLLGATE_TRUSTED_PROXIES", "FORWARDED_ALLOW_IPS", "CSRF_TRUSTED_ORIGINS"}
        env = {**{k: v for k, v in os.environ.items() if k not in skip},
               "DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": secrets.token_urlsafe(50),
               "ROLLGATE_CREDENTIALS_KEY": secrets.token_urlsafe(32), "ALLOWED_HOSTS": HOST,
               "DATABASE_URL": database_url(), "ROLLGATE_PUBLIC_URL": f"https://{HOST}",
               "STATIC_ROOT": str(static_root), **extra}
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "config.asgi:application", "--host",
                                    "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: see {log.name}")
            try:
                httpx.get(f"{url}/api/health/live", headers={"Host": HOST}, timeout=1)
                return url
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def get(url, path, **headers):
    return httpx.get(url + path, headers={"Host": HOST, **headers}, timeout=10)


@pytest.mark.django_db(transaction=True)  # the server process shares the test database
def test_a_trusted_proxy_forwarding_https_is_believed_and_anyone_else_is_redirected(production_server):
    # uvicorn trusts the proxy at 127.0.0.1 (the test plays the ingress); Rollgate's list follows FORWARDED_ALLOW_IPS
    url = production_server(FORWARDED_ALLOW_IPS="127.0.0.1")
    through_proxy = get(url, "/login/", **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
    assert through_proxy.status_code == 200
    assert "Strict-Transport-Security" in through_proxy.headers  # HSTS is only sent on HTTPS
    plain = get(url, "/login/")
    assert plain.status_code == 301 and plain.headers["Location"] == f"https://{HOST}/login/"

    untrusting = production_server(FORWARDED_ALLOW_IPS="10.9.9.9")
    claimed = get(untrusting, "/login/", **{"X-Forwarded-Proto": "https"})
    assert claimed.status_code == 301  # a client cannot claim HTTPS by writing the header itself


@pytest.mark.django_db(transaction=True)  # the server process shares the test database
def test_browser_login_through_the_proxy_passes_csrf(production_server):
    url = production_server(FORWARDED_ALLOW_IPS="127.0.0.1")
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    form = get(url, "/login/", **proxy)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    cookie = form.cookies["csrftoken"]  # a Secure cookie: the browser sends it back over HTTPS
    answer = httpx.post(url + "/login/", data={"csrfmiddlewaretoken": token, "username": "nobody-here",
                                               "password": "wrong-pw-1"},
                        headers={"Host": HOST, "Origin": f"https://{HOST}", "Referer": f"https://{HOST}/login/",
                                 "Cookie": f"csrftoken={cookie}", **proxy}, timeout=10)
    assert answer.status_code == 200, answer.text[:2000]  # the form again, with the login error (not a CSRF 403)
    assert "Wrong username or password." in answer.text
    foreign = httpx.post(url + "/login/", data={"csrfmiddlewaretoken": token, "username": "x", "password": "y"},
                         headers={"Host": HOST, "Origin": "https://evil.example.net", "Cookie": f"csrftoken={cookie}",
                                  **proxy}, timeout=10)
    assert foreign.status_code == 403


@pytest.mark.django_db(transaction=True)  # the server process shares the test database
def test_probes_and_scrapes_answer_over_plain_http(production_server):
    url = production_server(ROLLGATE_METRICS_TOKEN="scrape-7", FORWARDED_ALLOW_IPS="127.0.0.1")
    assert get(url, "/api/health/live").status_code == 200
    assert get(url, "/api/health/ready").status_code == 200
    assert get(url, "/metrics", Authorization="Bearer scrape-7").status_code == 200
    assert get(url, "/metrics").status_code == 401


def test_a_malformed_proxy_ssl_header_setting_refuses_to_start():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "SECRET_KEY": secrets.token_urlsafe(50), "ROLLGATE_CREDENTIALS_KEY": secrets.token_urlsafe(32),
           "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER must be 'HTTP_<HEADER>,<value>'" in result.stderr
