"""The payment page as a new user met it: an expired card, a stale second tab, a wrong transfer
whose notice named no order, and the inspection fee's wording and back link."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from payments.models import LedgerTransaction, Payment
from tests.payments.factories import EscrowFactory, buyer_of, payment_started
from tradeassure.platform.models import Notification

pytestmark = pytest.mark.django_db


def test_a_card_with_a_past_expiry_is_refused_and_nothing_moves(client):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    client.force_login(buyer_of(escrow))
    with time_machine.travel(date(2026, 12, 1), tick=False):
        response = client.post(
            reverse("payments:payment_card", args=[payment.public_id]),
            {"card_number": "4242424242424242", "expiry": "11/26", "cvc": "123"},
        )
    assert response.status_code == 400
    assert "This card has expired." in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert not LedgerTransaction.objects.exists()


def test_a_card_expiring_this_month_is_accepted(client, django_capture_on_commit_callbacks):
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    client.force_login(buyer_of(escrow))
    with (
        time_machine.travel(date(2026, 12, 1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("payments:payment_card", args=[payment.public_id]),
            {"card_number": "4242424242424242", "expiry": "12/26", "cvc": "123"},
        )
    assert response.status_code == 302


def test_a_stale_second_tab_paying_again_gets_a_friendly_message(
    client, django_capture_on_commit_callbacks
):
    # given a payment already paid in one tab
    escrow = EscrowFactory()
    payment = payment_started(escrow, Decimal("10.00"))
    client.force_login(buyer_of(escrow))
    card = {"card_number": "4242424242424242", "expiry": "12/40", "cvc": "123"}
    url = reverse("payments:payment_card", args=[payment.public_id])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, card)
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.CAPTURED
    captured = LedgerTransaction.objects.count()
    # when the second, stale tab submits the same payment
    response = client.post(url, card)
    # then the buyer is sent back with a message that it is already paid, nothing more charged
    assert response.status_code == 302
    body = client.get(payment.get_absolute_url()).content.decode()
    assert "was already paid (USD 10.00). Nothing more was charged." in body
    assert LedgerTransaction.objects.count() == captured


def test_the_wrong_transfer_notice_names_the_order(client, django_capture_on_commit_callbacks):
    escrow = EscrowFactory(description="TA-000029 — 200 speakers")
    payment = payment_started(escrow, Decimal("10.00"), method="bank_transfer")
    buyer = buyer_of(escrow)
    client.force_login(buyer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("payments:payment_transfer", args=[payment.public_id]),
            {"amount": "9.00", "currency": "USD"},
        )
    notice = Notification.objects.get(recipient=buyer, title__contains="did not match")
    assert "TA-000029" in notice.title and "TA-000029" in notice.body
    assert escrow.bank_reference in notice.body


def test_the_inspection_fee_page_explains_the_fee_and_goes_back_to_the_dispute(client):
    escrow = EscrowFactory(description="TA-000031 — 50 lamps")
    payment = payment_started(escrow, Decimal("300.00"), purpose="inspection_fee")
    Payment.objects.filter(pk=payment.pk).update(return_url="/disputes/7/")
    client.force_login(buyer_of(escrow))
    body = client.get(payment.get_absolute_url()).content.decode()
    assert "You pay no fees" not in body
    assert "refunded to you and charged to the supplier" in body
    assert '<a href="/disputes/7/">&larr; Back to the dispute</a>' in body
    assert escrow.reference not in body
