"""A broker outage while a buyer pays: the form still answers, and the charge is not lost.

The sandbox provider queues its webhook on the broker in a commit hook. With the broker down
the request has already committed, so the hook keeps the event in the outbox instead of
raising (which answered 500 and dropped the charge); the outbox sweep delivers it once the
broker is back, and a second delivery of the same event changes nothing.
"""

from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import LedgerTransaction, Payment, ProviderEvent
from payments.providers.sandbox import OUTBOX_CHANNEL
from tests.payments.factories import EscrowFactory, buyer_of, payment_started
from tradeassure.platform.models import OutboxMessage
from tradeassure.platform.outbox import outbox_dispatch_due

pytestmark = pytest.mark.django_db


def _captures(payment: Payment) -> int:
    return ProviderEvent.objects.filter(
        provider="sandbox", object_reference=payment.provider_reference, type="payment.captured"
    ).count()


def test_card_form_answers_while_the_broker_is_down_and_the_charge_lands_after(
    client, broker_down, django_capture_on_commit_callbacks
):
    # given a buyer with a pending card payment, and the broker down
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("99.99"))
    client.force_login(buyer_of(escrow))
    ledger_before = LedgerTransaction.objects.count()

    # when the buyer submits the card form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("payments:payment_card", args=[payment.public_id]),
            {"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"},
        )

    # then the page answers as usual (no 500), the card is handed over (so a second submission
    # cannot charge it again) but nothing is captured yet, and the event waits
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUBMITTED
    assert LedgerTransaction.objects.count() == ledger_before
    held = OutboxMessage.objects.get(channel=OUTBOX_CHANNEL)
    assert held.payload["event"]["type"] == "payment.captured"

    # when the broker is back and the outbox sweep runs (twice, as two beats might)
    with django_capture_on_commit_callbacks(execute=True):
        outbox_dispatch_due()
    OutboxMessage.objects.filter(pk=held.pk).update(
        status=OutboxMessage.Status.PENDING, next_attempt_at=held.next_attempt_at
    )
    with django_capture_on_commit_callbacks(execute=True):
        outbox_dispatch_due()

    # then the payment is captured exactly once
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert _captures(payment) == 1
    assert LedgerTransaction.objects.filter(kind="capture").count() == 1


def test_bank_transfer_form_answers_while_the_broker_is_down_and_lands_after(
    client, broker_down, django_capture_on_commit_callbacks
):
    # given a pending bank-transfer payment and the broker down
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("250.00"), method="bank_transfer")
    client.force_login(buyer_of(escrow))

    # when the sandbox transfer "arrives" through the page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("payments:payment_transfer", args=[payment.public_id]),
            {"amount": "250.00", "currency": escrow.currency},
        )

    # then the page answers and the event waits in the outbox
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert OutboxMessage.objects.filter(channel=OUTBOX_CHANNEL).count() == 1

    # when the outbox sweep runs after the broker is back
    with django_capture_on_commit_callbacks(execute=True):
        outbox_dispatch_due()

    # then the transfer is applied once
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert _captures(payment) == 1
