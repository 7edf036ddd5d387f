"""Browser tests: a real uvicorn server (http + websocket) on 127.0.0.1 over the pytest test database and the real
Redis channel layer, driven by Playwright with Debian's Chromium. Never `playwright install`."""
import os
import time
from pathlib import Path

import pytest

# free_port and database_url are imported from here by e2e modules (test_demo_story.py)
from tests.live_server import database_url, free_port, uvicorn_server  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium_path():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test does) to run the browser tests")
    return CHROMIUM


@pytest.fixture(scope="module")
def server_url(django_db_setup, chromium_path):
    """uvicorn in a subprocess, pointed at the test database that pytest-django created (as the app role)."""
    with uvicorn_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse the (truly
    # synchronous) ORM calls the tests make to change state. Allow them while the browser is up, then restore.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, server_url):
    """new_page() -> a page in a fresh browser context (its own cookies: one person per context)."""
    contexts = []

    def make():
        context = browser.new_context(base_url=server_url, viewport={"width": 1360, "height": 860})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    wait_server_quiet()


def wait_server_quiet(timeout: float = 15.0):
    """Wait (bounded) until the server process has no query or transaction open on the test database.

    Closing a browser context does not stop a request the server is already answering (a fragment refresh after a
    live event, say). pytest-django's teardown TRUNCATEs every table; run while such a request holds a table lock,
    the two deadlock and the next test starts on a database that was never emptied."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'")
            busy = cursor.fetchone()[0]
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 0.3:  # quiet for a moment, not between two queries of one request
            return
        time.sleep(0.05)
    print(f"e2e: the server still had a query open on the test database after {timeout:.0f} s")


def log_in(page, username: str, password: str | None = None):
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or f"pw-{username}")
    page.click("button[type=submit]")
    page.wait_for_selector("#live-status")


def wait_live(page):
    """Wait until the page's websocket is connected, so events after this point reach it."""
    page.wait_for_selector("#live-status.on")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def act(function, *args, **kwargs):
    """Run a state change the way a worker would: in a thread of its own. (This thread runs Playwright's event
    loop, where asgiref refuses to send the live events the change publishes on commit.)"""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)
