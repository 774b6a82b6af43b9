"""The buyer's side with Stripe: the payment page loads Stripe.js (and its CSP) only for Stripe,
declines are a form error on the page and a 402 problem in the API, and nothing is paid until
Stripe's webhook says so."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from payments.models import LedgerTransaction, Payment
from tests.payments.factories import EscrowFactory, buyer_of, payment_started
from tests.payments.stripe.conftest import deliver, events_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_stripe_page_loads_stripe_js_with_exactly_its_csp(stripe_on, stripe_client, client):
    # given a card payment taken by Stripe
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("1234.50"))
    client.force_login(buyer_of(escrow))

    # when the buyer opens the payment page
    response = client.get(payment.get_absolute_url())

    # then Stripe.js, the publishable key and the intent's client secret are on it, no card
    # number field of ours, and the CSP allows Stripe's script, frames and API and no more
    body = response.content.decode()
    secret = stripe_client.v1.payment_intents.retrieve(payment.provider_reference).client_secret
    assert response.status_code == 200
    assert '<script src="https://js.stripe.com/v3/"></script>' in body
    assert 'data-publishable-key="pk_test_tradeassure"' in body
    assert f'data-client-secret="{secret}"' in body
    assert 'name="card_number"' not in body
    csp = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )
    assert csp["script-src"] == "'self' https://js.stripe.com https://*.js.stripe.com"
    assert csp["frame-src"] == (
        "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"
    )
    assert csp["connect-src"] == "'self' https://api.stripe.com"
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'"


def test_the_sandbox_page_loads_nothing_from_stripe(client):
    # given the built-in sandbox provider
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    client.force_login(buyer_of(escrow))
    # when the page is shown, then no Stripe script, key or policy is on it
    response = client.get(payment.get_absolute_url())
    body = response.content.decode()
    assert "stripe" not in body.lower()
    assert "stripe" not in response.get("Content-Security-Policy", "")
    assert 'name="card_number"' in body


def test_a_decline_is_a_form_error_on_the_page_and_nothing_is_paid(
    stripe_on, stripe_client, client
):
    # given a payment whose card Stripe declined, reported by its webhook
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("80.00"))
    api = _api(buyer_of(escrow))
    declined = api.post(
        f"/api/v1/payments/{payment.public_id}/confirm-card/",
        {"payment_method": "pm_card_chargeCustomerFail"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="confirm-1",
    )
    event = events_for(
        stripe_client, payment.provider_reference, wait_for="payment_intent.payment_failed"
    )[-1]
    deliver(client, event)

    # when the buyer looks at the page again
    client.force_login(buyer_of(escrow))
    body = client.get(payment.get_absolute_url()).content.decode()

    # then the API said 402 card_declined as problem+json, the page shows the decline in the
    # card form, and nothing was paid
    assert declined.status_code == 402
    assert declined["Content-Type"] == "application/problem+json"
    assert declined.json()["code"] == "card_declined"
    assert "Your card was declined." in body
    assert 'id="stripe-card-errors" class="error" role="alert">Your card was declined.' in body
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.FAILED
    assert LedgerTransaction.objects.count() == 0


def test_confirming_by_api_records_nothing_until_the_webhook(stripe_on, stripe_client, client):
    # given a pending Stripe payment
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("80.00"))
    api = _api(buyer_of(escrow))

    # when a partner confirms it with a good card through the API
    response = api.post(
        f"/api/v1/payments/{payment.public_id}/confirm-card/",
        {"payment_method": "pm_card_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="confirm-2",
    )

    # then Stripe says succeeded, but the payment is only submitted (not paid) until the
    # webhook arrives
    assert response.status_code == 202 and response.json()["provider_status"] == "succeeded"
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUBMITTED
    assert LedgerTransaction.objects.count() == 0
    event = events_for(
        stripe_client, payment.provider_reference, wait_for="payment_intent.succeeded"
    )[-1]
    deliver(client, event)
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.CAPTURED


def test_sandbox_card_numbers_are_refused_for_a_stripe_payment(stripe_on, client):
    # given a Stripe payment
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("80.00"))
    client.force_login(buyer_of(escrow))

    # when someone posts a raw card number to the sandbox form's address
    response = client.post(
        f"/payments/{payment.public_id}/card/",
        {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
    )

    # then it is a form error and nothing changed
    assert response.status_code == 400
    assert "provider&#x27;s own card form" in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert LedgerTransaction.objects.count() == 0
