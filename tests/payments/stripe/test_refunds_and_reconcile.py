"""Stripe refunds (full, partial, split over two payment intents, retried), amounts in minor
units, network failures, and the reconcile command, against localstripe."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from payments import services
from payments.models import LedgerTransaction, Payment, Refund
from payments.providers.base import ProviderUnavailable
from payments.providers.stripe import from_minor, idempotency_key, to_minor
from payments.selectors import escrow_summary, ledger_verify
from tests.payments.factories import EscrowFactory, payment_started
from tests.payments.stripe.conftest import browser_confirms, deliver, events_for
from tradeassure.core import clock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _paid(client, stripe_client, escrow, amount: Decimal, purpose: str = "initial") -> Payment:
    """A card payment confirmed at Stripe and captured by its (signed) webhook."""
    payment = payment_started(escrow, amount, purpose=purpose)
    browser_confirms(payment)
    event = events_for(
        stripe_client, payment.provider_reference, wait_for="payment_intent.succeeded"
    )[-1]
    assert deliver(client, event).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    return payment


def _refunds_at_stripe(stripe_client, reference: str) -> list[dict]:
    return [
        r.to_dict()
        for r in stripe_client.v1.refunds.list({"limit": 100}).auto_paging_iter()
        if r.to_dict()["metadata"].get("ta_reference") == reference
    ]


def test_amounts_are_sent_in_each_currencys_minor_units():
    # given amounts in a two-decimal currency and in JPY (no decimals)
    # then Stripe gets integers of the smallest unit, and they convert back exactly
    assert to_minor(Decimal("1400.00"), "USD") == 140000
    assert to_minor(Decimal("45000"), "JPY") == 45000
    assert from_minor(45000, "JPY") == Decimal("45000")
    assert from_minor(123, "EUR") == Decimal("1.23")
    with pytest.raises(ValueError):
        to_minor(Decimal("0.5"), "JPY")
    # and idempotency keys stay within Stripe's 255 characters
    assert len(idempotency_key("refund", "x" * 400)) <= 255


def test_a_jpy_payment_intent_is_for_exactly_the_amount_due(stripe_on, stripe_client):
    # given an escrow in JPY
    escrow = EscrowFactory(currency="JPY")
    # when a payment of JPY 45,000 starts
    payment = payment_started(escrow, Decimal("45000"))
    # then the intent is for 45000 yen, card only, and names the escrow
    intent = stripe_client.v1.payment_intents.retrieve(payment.provider_reference).to_dict()
    assert (intent["amount"], intent["currency"]) == (45000, "jpy")
    assert intent["metadata"]["escrow_reference"] == escrow.reference
    assert payment.status == Payment.Status.PENDING


def test_a_refund_split_over_two_payments_completes_once_and_a_retry_refunds_nothing_more(
    stripe_on, stripe_client, client
):
    # given an escrow paid in two card payments (400.00 and 1,000.00)
    escrow = EscrowFactory(currency="USD")
    first = _paid(client, stripe_client, escrow, Decimal("400.00"))
    second = _paid(client, stripe_client, escrow, Decimal("1000.00"), purpose="balance")

    # when 1,000.00 is refunded (more than the first payment) and the request is sent again
    services.escrow_refund(
        escrow_reference=escrow.reference,
        amount=Decimal("1000.00"),
        idempotency_key="split-refund",
        reason="Order cancelled",
    )
    refund = Refund.objects.get()
    services.refund_send_to_provider(refund_id=refund.pk)
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.REQUESTED)  # as if unsure
    services.refund_send_to_provider(refund_id=refund.pk)  # the resend sweep asks again
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.COMPLETED)

    # then Stripe holds two refunds (the whole first payment and 600.00 of the second), with
    # idempotency keys from our reference; the refund completed once in the ledger
    parts = _refunds_at_stripe(stripe_client, refund.provider_reference)
    assert sorted((p["payment_intent"], p["amount"]) for p in parts) == sorted(
        [(first.provider_reference, 40000), (second.provider_reference, 60000)]
    )
    refund.refresh_from_db()
    assert refund.status == Refund.Status.COMPLETED
    assert LedgerTransaction.objects.filter(kind="refund_completed").count() == 1
    summary = escrow_summary(escrow_reference=escrow.reference)
    assert (summary.refunded, summary.held) == (Decimal("1000.00"), Decimal("400.00"))
    assert ledger_verify().ok


def test_a_refund_webhook_for_a_completed_refund_is_stale(stripe_on, stripe_client, client):
    # given a refund completed from the Refunds API's answer
    escrow = EscrowFactory(currency="USD")
    _paid(client, stripe_client, escrow, Decimal("200.00"))
    services.escrow_refund(
        escrow_reference=escrow.reference,
        amount=Decimal("50.00"),
        idempotency_key="partial",
        reason="Short shipment",
    )
    refund = Refund.objects.get()
    services.refund_send_to_provider(refund_id=refund.pk)
    (part,) = _refunds_at_stripe(stripe_client, refund.provider_reference)
    before = LedgerTransaction.objects.count()

    # when Stripe's refund.created arrives late (localstripe sends no refund events; this is
    # the event Stripe documents, built from the refund object it returned)
    part["status"] = "pending"
    response = deliver(
        client,
        {"id": "evt_late_refund", "type": "refund.created", "created": 1, "data": {"object": part}},
    )

    # then it is stored once as stale and moves nothing
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    refund.refresh_from_db()
    assert refund.status == Refund.Status.COMPLETED
    assert LedgerTransaction.objects.count() == before


def test_stripe_unreachable_records_nothing(stripe_on, settings):
    # given Stripe cannot be reached (nothing listens on the port)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    escrow = EscrowFactory(currency="USD")

    # when a payment starts, then the caller gets a clear 503 and no payment exists
    with pytest.raises(ProviderUnavailable) as error:
        payment_started(escrow, Decimal("10.00"))
    assert error.value.status == 503 and error.value.code == "provider_unavailable"
    assert Payment.objects.count() == 0


def test_reconcile_finds_a_payment_the_ledger_lacks(stripe_on, stripe_client, client):
    # given a captured payment the ledger knows, and one made at Stripe it never heard of
    started = clock.now() - timedelta(seconds=1)
    escrow = EscrowFactory(currency="USD")
    _paid(client, stripe_client, escrow, Decimal("250.00"))
    clean = StringIO()
    call_command("payments_reconcile", since=started.isoformat(), stdout=clean)
    stray = stripe_client.v1.payment_intents.create(
        {"amount": 9900, "currency": "usd", "payment_method_types": ["card"]}
    )
    stripe_client.v1.payment_intents.confirm(stray.id, {"payment_method": "pm_card_visa"})

    # when the reconcile command runs for the period
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("payments_reconcile", since=started.isoformat(), stdout=out, stderr=err)

    # then it was clean before, and now reports the stray payment and exits 1
    assert "OK: the provider and the ledger agree." in clean.getvalue()
    assert failed.value.returncode == 1
    assert f"payment {stray.id}: captured at stripe (USD 99.00), unknown to the ledger" in (
        err.getvalue()
    )


def test_reconcile_reports_a_payment_whose_webhook_never_arrived(stripe_on, stripe_client):
    # given a payment captured at Stripe whose webhook was lost (the ledger still says pending)
    started = clock.now() - timedelta(seconds=1)
    escrow = EscrowFactory(currency="USD")
    payment = payment_started(escrow, Decimal("75.00"))
    browser_confirms(payment)

    # when reconciling, then the status difference is reported
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("payments_reconcile", since=started.isoformat(), stdout=StringIO(), stderr=err)
    assert (
        f"payment {payment.provider_reference}: captured at stripe, pending in the ledger"
        in err.getvalue()
    )
