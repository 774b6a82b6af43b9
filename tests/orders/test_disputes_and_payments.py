"""The hand-offs: the payments capture hook, and the disputes app's open/resolve/amend calls."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from orders import services
from orders.models import Coverage, OrderEvent, OrderStatus
from payments.selectors import escrow_summary
from payments.services import payment_card_submit
from tests.factories import MediatorFactory
from tests.orders.factories import order_in, pay, supplier_user_of
from tests.orders.helpers import snapshot
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, Unprocessable

pytestmark = pytest.mark.django_db
S = OrderStatus


def test_opening_a_dispute_pauses_timers_freezes_escrow_and_remembers_the_status():
    # given an order in production whose shipment deadline is 45 days away
    order = order_in(S.IN_PRODUCTION)
    left = order.shipment_due_at - clock.now()
    # when a dispute is opened
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    # then it is disputed, remembers where it was, and no timer runs
    assert (order.status, order.status_before_dispute) == (S.DISPUTED, S.IN_PRODUCTION)
    assert all(getattr(order, field) is None for field in services.DUE_FIELDS)
    assert abs(order.paused_timers["shipment_due_at"] - left.total_seconds()) < 5
    assert escrow_summary(escrow_reference=order.escrow_reference).frozen


def test_resuming_after_a_dispute_shifts_the_deadlines_by_the_time_paused():
    order = order_in(S.IN_PRODUCTION)
    deadline = order.shipment_deadline
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    paused_at = order.disputed_at
    # when the dispute ends 10 days later with the order continuing
    with time_machine.travel(paused_at + timedelta(days=10), tick=False):
        order = services.order_dispute_resolved(
            order=order, actor=MediatorFactory(), outcome="resume", dispute_reference="D-7"
        )
    # then the order is back in production and the deadline moved by the 10 days
    assert order.status == S.IN_PRODUCTION
    assert abs((order.shipment_due_at - deadline) - timedelta(days=10)) < timedelta(seconds=5)
    assert order.shipment_deadline == order.shipment_due_at
    assert not escrow_summary(escrow_reference=order.escrow_reference).frozen
    assert order.paused_timers == {} and order.status_before_dispute == ""


def test_a_full_refund_decision_refunds_everything_held():
    from suppliers.models import SupplierOrderRecord

    order = order_in(S.READY_TO_SHIP)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    order = services.order_dispute_resolved(
        order=order,
        actor=MediatorFactory(),
        outcome="full_refund",
        dispute_reference="D-1",
        supplier_at_fault=True,
    )
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.REFUNDED
    assert (money.held, money.refunded) == (Decimal("0.00"), Decimal("1400.00"))
    record = SupplierOrderRecord.objects.get(order_reference=order.escrow_reference)
    assert (record.status, record.disputed, record.dispute_lost) == ("refunded", True, True)


def test_a_partial_refund_decision_refunds_part_and_releases_the_rest():
    order = order_in(S.DELIVERED)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    order = services.order_dispute_resolved(
        order=order,
        actor=MediatorFactory(),
        outcome="partial_refund",
        refund_amount=Decimal("300.00"),
        dispute_reference="D-2",
    )
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.COMPLETED
    assert (money.refunded, money.released, money.held) == (
        Decimal("300.00"),
        Decimal("1100.00"),
        Decimal("0.00"),
    )


def test_refusing_an_impossible_outcome_changes_nothing():
    order = order_in(S.DELIVERED)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    before = snapshot(order)
    with pytest.raises(Conflict):
        services.order_dispute_resolved(
            order=order,
            actor=MediatorFactory(),
            outcome="partial_refund",
            refund_amount=Decimal("5000.00"),
            dispute_reference="D-3",
        )
    assert snapshot(order) == before
    assert escrow_summary(escrow_reference=order.escrow_reference).frozen


def test_a_new_agreement_amends_money_terms_refunds_the_difference_and_continues():
    order = order_in(S.READY_TO_SHIP)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    terms = services.contract_terms_of(order.current_version)
    cheaper = replace(terms, items=[replace(terms.items[0], unit_price=Decimal("11.00"))])
    mediator = MediatorFactory()
    version = services.order_contract_amend_by_dispute(
        order=order, actor=mediator, terms=cheaper, dispute_reference="D-4"
    )
    order.refresh_from_db()
    assert order.current_version_id == version.pk and order.total == Decimal("1250.00")
    order = services.order_dispute_resolved(
        order=order,
        actor=mediator,
        outcome="new_agreement",
        refund_amount=Decimal("150.00"),
        dispute_reference="D-4",
    )
    assert order.status == S.READY_TO_SHIP
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("1250.00")


def test_the_capture_hook_returns_a_payment_the_order_no_longer_waits_for():
    # given an awaiting-payment order whose buyer opened a card payment, then cancelled the order
    order = order_in(S.AWAITING_PAYMENT)
    payment = services.order_payment_start(order=order, actor=order.buyer, method="card")
    services.order_cancel(order=order, actor=order.buyer, reason="Found another supplier")
    # when the card payment is completed anyway
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        payment_card_submit(payment=payment, card_number="4242424242424242", actor=order.buyer)
    # then the money is not kept: it is refunded, and the timeline says so
    order.refresh_from_db()
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.CANCELLED
    assert (money.captured, money.refunded, money.held) == (
        Decimal("400.00"),
        Decimal("400.00"),
        Decimal("0.00"),
    )
    assert OrderEvent.objects.filter(order=order, action="payment_returned").count() == 1


def test_the_capture_hook_called_twice_for_one_payment_acts_once():
    from payments.models import Payment

    order = pay(order_in(S.AWAITING_PAYMENT))
    payment = Payment.objects.get(escrow__reference=order.escrow_reference)
    before = snapshot(order)
    services.order_payment_captured(payment=payment)
    assert snapshot(order) == before


def test_a_balance_paid_while_disputed_is_kept_and_applied_after_the_dispute():
    order = order_in(S.AWAITING_BALANCE)
    payment = services.order_payment_start(order=order, actor=order.buyer, method="card")
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        payment_card_submit(payment=payment, card_number="4242424242424242", actor=order.buyer)
    order.refresh_from_db()
    assert (order.status, order.status_before_dispute) == (S.DISPUTED, S.READY_TO_SHIP)
    order = services.order_dispute_resolved(
        order=order, actor=MediatorFactory(), outcome="resume", dispute_reference="D-5"
    )
    assert order.status == S.READY_TO_SHIP
    assert escrow_summary(escrow_reference=order.escrow_reference).held == Decimal("1400.00")


def test_nothing_to_refund_in_full_after_a_pre_shipment_release():
    order = order_in(S.SHIPPED, coverage=Coverage.PRE_SHIPMENT)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    before = snapshot(order)
    with pytest.raises(Unprocessable):
        services.order_dispute_resolved(
            order=order, actor=MediatorFactory(), outcome="full_refund", dispute_reference="D-6"
        )
    assert snapshot(order) == before


def test_paying_twice_opens_the_same_payment_and_only_the_buyer_pays():
    from tradeassure.core.errors import NotAllowed

    order = order_in(S.AWAITING_PAYMENT)
    first = services.order_payment_start(order=order, actor=order.buyer, method="card")
    again = services.order_payment_start(order=order, actor=order.buyer, method="card")
    assert first.pk == again.pk and first.amount == Decimal("400.00")
    with pytest.raises(NotAllowed):
        services.order_payment_start(order=order, actor=supplier_user_of(order), method="card")
