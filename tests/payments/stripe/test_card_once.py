"""One card confirmation per Stripe payment: 8 API clients confirming at once (real threads on
PostgreSQL) reach Stripe once; the others get 409 `payment_already_submitted`."""

import threading
from collections import Counter
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from payments.models import LedgerTransaction, Payment
from payments.providers.stripe import StripeProvider
from tests.payments.factories import EscrowFactory, buyer_of, payment_started
from tests.payments.stripe.conftest import deliver, events_for
from tests.payments.test_card_once import assert_charged_once, run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_eight_concurrent_confirmations_reach_stripe_once(
    stripe_on, stripe_client, client, monkeypatch
):
    # given a pending Stripe payment, and the adapter's confirm counted
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("80.00"))
    buyer = buyer_of(escrow)
    confirmations: list[str] = []
    lock = threading.Lock()
    original = StripeProvider.confirm_card

    def counting(self, *, payment, payment_method):
        with lock:
            confirmations.append(payment_method)
        return original(self, payment=payment, payment_method=payment_method)

    monkeypatch.setattr(StripeProvider, "confirm_card", counting)

    def confirm(index: int):
        api = APIClient()
        api.force_authenticate(buyer)
        response = api.post(
            f"/api/v1/payments/{payment.public_id}/confirm-card/",
            {"payment_method": "pm_card_visa"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"confirm-{index}",
        )
        return response.status_code, response.json().get("code", "")

    # when 8 clients confirm it at once
    results = run_in_threads(8, confirm)

    # then one reached Stripe; the rest were refused as already submitted (no other error)
    assert Counter(status for status, _ in results) == {202: 1, 409: 7}, results
    assert {code for status, code in results if status == 409} == {"payment_already_submitted"}
    assert len(confirmations) == 1
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUBMITTED
    assert LedgerTransaction.objects.count() == 0

    # and the webhook captures it once
    event = events_for(
        stripe_client, payment.provider_reference, wait_for="payment_intent.succeeded"
    )[-1]
    deliver(client, event)
    assert_charged_once(payment)
