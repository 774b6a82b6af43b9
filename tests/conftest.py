"""Test harness shared by every app's tests.

Tests that need a real PostgreSQL, Redis or Chromium carry the marker `postgres`, `redis` or
`browser`. Where the service is missing they skip with the reason; under
TRADEASSURE_REQUIRE_SERVICES=1 (set by .ci/run) the same absence fails the test instead.
"""

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.db import connection

from tradeassure.celery import app as celery_app

REQUIRE_SERVICES = os.environ.get("TRADEASSURE_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _redis_reachable() -> bool:
    parsed = urlparse(REDIS_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 1):
            return True
    except OSError:
        return False


def _missing(marker_name: str) -> str | None:
    if marker_name == "postgres" and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://…"
    if marker_name == "redis" and not _redis_reachable():
        return f"needs Redis at {REDIS_URL}"
    if marker_name == "browser" and not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"needs Chromium at {CHROMIUM}"
    return None


def pytest_runtest_setup(item):
    for marker_name in ("postgres", "redis", "browser"):
        if item.get_closest_marker(marker_name) is None:
            continue
        reason = _missing(marker_name)
        if reason is None:
            continue
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason} (TRADEASSURE_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Factories set a password on every user; the production hasher is slow by design."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Uploads go to a per-test folder, never into var/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks queued by code under test run in-process; the worker test turns this off."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def chromium_path() -> str:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(chromium_path, live_server, monkeypatch):
    """A Playwright page in the system Chromium, pointed at pytest-django's live server.

    Use it in tests marked `@pytest.mark.browser` (and `django_db(transaction=True)`): the
    context's base URL is the live server, so `browser_page.goto("/orders/")` works.
    Playwright's sync API runs an event loop in this thread, so Django's async-safety guard
    is relaxed for the test (the ORM is still used from one thread at a time).
    """
    reason = _missing("browser")
    if reason and REQUIRE_SERVICES:
        pytest.fail(reason, pytrace=False)
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # Queries the test made while Playwright's loop ran used a connection of that
            # context; close it here, or PostgreSQL cannot drop the test database at the end.
            from django.db import connections

            connections.close_all()


@pytest.fixture
def client():
    """pytest-django's `client`, except that staff it logs in pass the admin's TOTP check."""
    from tests.otp import StaffVerifyingClient

    return StaffVerifyingClient()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_down(monkeypatch):
    """The Celery broker is unreachable (a closed local port) and tasks really go to it."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    # First: its value falls back to broker_url, so patched later it would be "restored" to
    # the closed port.
    monkeypatch.setattr(celery_app.conf, "broker_write_url", None)
    # Celery lets the CELERY_BROKER_URL environment variable win over its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setattr(celery_app.conf, "broker_url", url)
    celery_app.conf.task_always_eager = False  # _celery_eager turns it back on afterwards
    _reset_broker_pool()
    yield url
    _reset_broker_pool()


def _reset_broker_pool() -> None:
    """Forget the app's pools so the next publish picks the pool of the current URL. Not closed:
    kombu keeps one pool per URL for the whole process, and a closed one is never reopened."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
