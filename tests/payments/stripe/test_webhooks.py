"""Stripe webhooks against localstripe: captures move orders on, declines change nothing,
duplicates and reordering apply once, forged or stale signatures are refused."""

import time
from decimal import Decimal

import pytest

from orders import services as orders_services
from orders.models import Order, OrderStatus
from payments.models import LedgerTransaction, Payment, ProviderEvent
from payments.providers.base import PaymentDeclined
from payments.selectors import escrow_summary, ledger_verify
from tests.orders.factories import place_order, supplier_user_of
from tests.payments.stripe.conftest import (
    browser_confirms,
    deliver,
    events_for,
    wait_until,
)

pytestmark = pytest.mark.postgres
S = OrderStatus


def _awaiting_payment() -> Order:
    order = place_order()
    return orders_services.order_confirm(order=order, actor=supplier_user_of(order))


def _start(order: Order) -> Payment:
    return orders_services.order_payment_start(order=order, actor=order.buyer, method="card")


def _state(order: Order) -> tuple:
    """Everything a webhook could change: ledger, order, payment statuses."""
    order.refresh_from_db()
    return (
        order.status,
        LedgerTransaction.objects.count(),
        escrow_summary(escrow_reference=order.escrow_reference).held,
        sorted(Payment.objects.values_list("status", flat=True)),
    )


@pytest.mark.django_db(transaction=True)
def test_a_card_payment_captured_through_real_webhooks_moves_the_order_on(
    stripe_on, real_webhooks, stripe_client
):
    # given an order awaiting its initial payment, paid with a Stripe PaymentIntent
    order = _awaiting_payment()
    payment = _start(order)
    intent = stripe_client.v1.payment_intents.retrieve(payment.provider_reference)
    # the intent is for exactly the amount due, in minor units
    assert (intent.amount, intent.currency) == (40000, "usd")
    assert payment.status == Payment.Status.PENDING

    # when the buyer's browser confirms the card and localstripe delivers its webhook
    assert browser_confirms(payment) == "succeeded"
    # (nothing is recorded as paid from the browser's side: only the webhook does it)
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    wait_until(
        lambda: Payment.objects.get(pk=payment.pk).status == Payment.Status.CAPTURED,
        what="the payment_intent.succeeded webhook",
    )

    # then the money is held in escrow and the order moved on to production
    order.refresh_from_db()
    assert order.status == S.IN_PRODUCTION
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("400.00")
    event = ProviderEvent.objects.get(
        provider="stripe", object_reference=payment.provider_reference, type="payment.captured"
    )
    assert event.status == ProviderEvent.Status.APPLIED
    assert ledger_verify().ok


@pytest.mark.django_db
def test_a_declined_card_changes_nothing(stripe_on, stripe_client, client):
    # given an order awaiting payment and its PaymentIntent
    order = _awaiting_payment()
    payment = _start(order)
    before = _state(order)

    # when the card is declined at confirmation (localstripe declines pm_card_chargeCustomerFail
    # on charge; Stripe declines 4000 0000 0000 0002 there too, localstripe does not)
    with pytest.raises(PaymentDeclined) as declined:
        browser_confirms(payment, "pm_card_chargeCustomerFail")
    # and Stripe's payment_failed webhook arrives
    failed = events_for(
        stripe_client, payment.provider_reference, wait_for="payment_intent.payment_failed"
    )
    response = deliver(client, failed[-1])

    # then the buyer is told clearly, the payment is marked declined with Stripe's reason, and
    # nothing else changed: no money, the order still waits for its payment
    assert declined.value.code == "card_declined" and declined.value.status == 402
    assert "declined" in declined.value.message
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert "declined" in payment.failure_reason
    assert _state(order)[:3] == before[:3]
    assert order.status == S.AWAITING_PAYMENT


@pytest.mark.django_db
def test_a_duplicated_and_a_reordered_webhook_apply_once(stripe_on, stripe_client, client):
    # given a payment declined once and then paid with another card: two events, in order
    order = _awaiting_payment()
    payment = _start(order)
    with pytest.raises(PaymentDeclined):
        browser_confirms(payment, "pm_card_chargeCustomerFail")
    browser_confirms(payment, "pm_card_visa")
    events = events_for(
        stripe_client, payment.provider_reference, wait_for="payment_intent.succeeded"
    )
    failed = next(e for e in events if e["type"] == "payment_intent.payment_failed")
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")

    # when they arrive reordered (success first) and the success twice
    first = deliver(client, succeeded)
    duplicate = deliver(client, succeeded)
    late_failure = deliver(client, failed)

    # then the capture is applied once, the late failure is stale, and the order moved on once
    assert [first.status_code, duplicate.status_code, late_failure.status_code] == [200] * 3
    assert duplicate.json()["duplicate"] is True
    assert late_failure.json()["status"] == ProviderEvent.Status.IGNORED
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("400.00")
    order.refresh_from_db()
    assert order.status == S.IN_PRODUCTION
    assert ProviderEvent.objects.filter(provider="stripe").count() == 2
    assert ledger_verify().ok


@pytest.mark.django_db
def test_a_forged_or_stale_signature_is_refused(stripe_on, stripe_client, client):
    # given a genuine succeeded event for a payment
    order = _awaiting_payment()
    payment = _start(order)
    browser_confirms(payment)
    succeeded = events_for(
        stripe_client, payment.provider_reference, wait_for="payment_intent.succeeded"
    )[-1]
    before = _state(order)

    # when it arrives signed with another secret, too old, unsigned, or altered after signing
    forged = deliver(client, succeeded, secret="whsec_attacker")
    stale = deliver(client, succeeded, timestamp=int(time.time()) - 3600)
    unsigned = client.post(
        "/payments/webhooks/stripe/", data=b"{}", content_type="application/json"
    )

    # then each is refused with 400 and nothing is stored or moved
    for response in (forged, stale, unsigned):
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_signature"
    assert ProviderEvent.objects.count() == 0
    assert _state(order) == before


@pytest.mark.django_db
def test_an_event_type_the_app_does_not_use_is_acknowledged_and_stored_once(stripe_on, client):
    # given a genuine event of a type the endpoint was not meant to get
    event = {
        "id": "evt_unused_1",
        "type": "customer.created",
        "created": int(time.time()),
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }

    # when it arrives twice
    responses = [deliver(client, event), deliver(client, event)]

    # then Stripe gets 200 (no retries, the endpoint stays enabled) and it is stored as ignored
    assert [r.status_code for r in responses] == [200, 200]
    stored = ProviderEvent.objects.get()
    assert (stored.event_id, stored.status) == ("evt_unused_1", ProviderEvent.Status.IGNORED)
    assert LedgerTransaction.objects.count() == 0
