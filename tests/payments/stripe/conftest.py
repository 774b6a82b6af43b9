"""A localstripe server for the Stripe adapter's tests, started once per test session.

It listens on a free loopback port (tests/payments/stripe/localstripe_server.py) and is
stopped when the session ends. `stripe_on` points the settings at it; helpers below act as the
buyer's browser (Stripe.js confirming a card) and as Stripe's webhook sender.
"""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import stripe
from django.conf import settings as django_settings

from payments.providers import provider_get

ROOT = Path(django_settings.BASE_DIR)
WEBHOOK_SECRET = "whsec_test_tradeassure_0123456789abcdef"
SECRET_KEY = "sk_test_tradeassure"
WEBHOOK_PATH = "/payments/webhooks/stripe/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_url():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.payments.stripe.localstripe_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                error = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"localstripe did not start: {error}", pytrace=False)
            time.sleep(0.1)
    yield url
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def stripe_on(settings, localstripe_url):
    """PAYMENT_PROVIDER=stripe against an empty localstripe; suppliers are paid by `manual`
    payouts."""
    requests.delete(f"{localstripe_url}/_config/data", timeout=5).raise_for_status()
    settings.PAYMENT_PROVIDER = "stripe"
    settings.PAYOUT_PROVIDER = "manual"
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_tradeassure"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    return localstripe_url


@pytest.fixture
def stripe_client(stripe_on) -> stripe.StripeClient:
    """Stripe as the test sees it (what the dashboard would show)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_on})


def browser_confirms(payment, payment_method: str = "pm_card_visa") -> str:
    """What Stripe.js does in the buyer's browser: confirm the intent with the card."""
    return provider_get("stripe").confirm_card(payment=payment, payment_method=payment_method)


def events_for(client: stripe.StripeClient, object_id: str, *, wait_for: str = "") -> list[dict]:
    """The events Stripe recorded for one object, oldest first (waiting for one type)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            event.to_dict()
            for event in client.v1.events.list({"limit": 100}).auto_paging_iter()
            if event.to_dict()["data"]["object"].get("id") == object_id
        ]
        found.sort(key=lambda event: event["created"])
        if not wait_for or any(event["type"] == wait_for for event in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"No {wait_for} event for {object_id}: {found}")
        time.sleep(0.1)


def signed(event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    """The body and Stripe-Signature header Stripe sends for this event."""
    body = json.dumps(event).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{body.decode()}", secret)
    return body, f"t={timestamp},v1={signature}"


def deliver(client, event: dict, **kwargs):
    """POST one event to the webhook endpoint, signed as Stripe signs it."""
    body, header = signed(event, **kwargs)
    return client.post(
        WEBHOOK_PATH,
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": header},
    )


@pytest.fixture
def real_webhooks(stripe_on, live_server):
    """localstripe delivers its webhooks itself to the live server, signed with the secret,
    while the test runs (and to nowhere after it)."""
    config = f"{stripe_on}/_config/webhooks/tradeassure"
    # localstripe sends each event a second after it happened: let earlier tests' events go
    # to nowhere first, so none reaches this test's database.
    time.sleep(1.2)
    requests.post(
        config,
        json={"url": f"{live_server.url}{WEBHOOK_PATH}", "secret": WEBHOOK_SECRET},
        timeout=5,
    ).raise_for_status()
    yield live_server
    requests.post(
        config,
        json={"url": "http://127.0.0.1:9/", "secret": WEBHOOK_SECRET, "events": ["none"]},
        timeout=5,
    ).raise_for_status()


def wait_until(check, *, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for {what}.")
        time.sleep(0.1)
