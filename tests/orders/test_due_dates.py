"""Payment deadlines fall before the shipment deadline, the balance has a due date the buyer
sees, and the supplier is never flagged late while it waits for the buyer's balance."""

from datetime import timedelta

import pytest
import time_machine

from orders import services
from orders.models import OrderStatus
from tests.orders.factories import order_in, pay, supplier_user_of
from tradeassure.core import clock

pytestmark = pytest.mark.django_db
S = OrderStatus


def test_initial_payment_falls_due_before_a_45_day_shipment_deadline():
    # given an order with a shipment deadline 45 days away (the payment window is 60 days)
    order = order_in(S.PENDING_CONFIRMATION)
    # when the supplier confirms
    order = services.order_confirm(order=order, actor=supplier_user_of(order))
    # then the buyer must pay before the supplier must ship, leaving half the time to produce
    assert order.payment_due_at < order.shipment_due_at
    assert order.payment_due_at <= clock.now() + timedelta(days=22, hours=12, minutes=1)


def test_a_far_shipment_deadline_keeps_the_normal_payment_window(settings):
    order = order_in(S.PENDING_CONFIRMATION, shipment_deadline=clock.now() + timedelta(days=170))
    order = services.order_confirm(order=order, actor=supplier_user_of(order))
    window = settings.TRADE_ASSURANCE["INITIAL_PAYMENT_WINDOW"]
    assert abs(order.payment_due_at - (clock.now() + window)) < timedelta(minutes=1)


def test_requesting_the_balance_gives_it_a_due_date_shown_to_the_buyer(client, settings):
    # given an order in production
    order = order_in(S.IN_PRODUCTION)
    # when the supplier requests the balance
    order = services.order_request_balance(order=order, actor=supplier_user_of(order))
    # then the balance is due after the balance window, and the buyer's page says so
    window = settings.TRADE_ASSURANCE["BALANCE_PAYMENT_WINDOW"]
    assert order.payment_due_at == order.balance_requested_at + window
    client.force_login(order.buyer)
    body = client.get(order.get_absolute_url()).content.decode()
    assert "pay the balance by" in body
    assert f"{order.payment_due_at:%Y-%m-%d %H:%M} UTC" in body
    # and the shipment deadline is on the page too
    assert f"{order.shipment_due_at:%Y-%m-%d %H:%M} UTC" in body


def test_no_late_flag_while_waiting_for_the_balance_and_the_deadline_moves_with_it():
    # given an order awaiting the balance, 45 days before its shipment deadline
    order = order_in(S.AWAITING_BALANCE)
    deadline = order.shipment_due_at
    # when the buyer takes 50 days to pay (the shipment deadline passes meanwhile)
    with time_machine.travel(deadline + timedelta(days=5), tick=False):
        assert services.orders_sweep_shipment_deadlines() == 0
        order.refresh_from_db()
        assert (order.status, order.is_late) == (S.AWAITING_BALANCE, False)
        order = pay(order)
        # then the supplier is not late, and the shipment deadline moved by the wait
        order.refresh_from_db()
        assert order.status == S.READY_TO_SHIP and order.is_late is False
        waited = order.balance_paid_at - order.balance_requested_at
        assert order.shipment_due_at == deadline + waited
        assert order.shipment_deadline == order.shipment_due_at
        assert order.payment_due_at is None
        assert services.orders_sweep_shipment_deadlines() == 0
