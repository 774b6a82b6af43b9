"""Races between people, timers and arriving money, on PostgreSQL with real threads."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from orders import services
from orders.models import Order, OrderEvent, OrderStatus
from payments.selectors import escrow_summary
from tests.orders.factories import order_in, supplier_user_of, with_time_past_deadline

S = OrderStatus
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(*calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = ("ok", call())
        except Exception as error:
            outcomes[index] = ("error", error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _capture_now(payment):
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event

    return sandbox_deliver_event(
        event_body(
            "payment.captured",
            payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            charge_id=f"ch_race_{payment.pk}",
        )
    )


def test_a_balance_arriving_while_the_buyer_cancels_a_late_order_is_never_kept():
    # given an order flagged late in production (waiting for the balance never makes it late),
    # now awaiting its balance, with the buyer's balance payment on its way
    order = with_time_past_deadline(order_in(S.IN_PRODUCTION))
    order = services.order_request_balance(order=order, actor=supplier_user_of(order))
    assert order.is_late
    payment = services.order_payment_start(order=order, actor=order.buyer, method="card")
    # when the money arrives at the same moment as the buyer cancels with a full refund
    outcomes = _race(
        lambda: _capture_now(payment),
        lambda: services.order_cancel_late_with_refund(order=order, actor=order.buyer),
    )
    # then no deadlock or error, the order is refunded, and every cent captured went back
    assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
    order.refresh_from_db()
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.REFUNDED
    assert money.captured == Decimal("1400.00")
    assert (money.held, money.refunded, money.released) == (
        Decimal("0.00"),
        Decimal("1400.00"),
        Decimal("0.00"),
    )


def test_the_buyer_accepting_while_the_claim_window_closes_releases_once():
    # given a delivered order whose claim window closes now
    order = order_in(S.DELIVERED)
    Order.objects.filter(pk=order.pk).update(completion_due_at=order.delivered_at)
    # when the buyer accepts the goods while the sweep completes the order
    outcomes = _race(
        lambda: services.order_accept_goods(order=order, actor=order.buyer),
        services.orders_sweep_post_delivery_windows,
    )
    # then exactly one of them completed it and the money was released once
    order.refresh_from_db()
    completions = OrderEvent.objects.filter(
        order=order, action__in=["accept_goods", "complete_after_window"]
    ).count()
    money = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.COMPLETED and completions == 1
    assert (money.released, money.held) == (Decimal("1400.00"), Decimal("0.00"))
    assert any(kind == "ok" for kind, _ in outcomes)


def test_two_suppliers_confirming_at_once_confirm_once():
    order = order_in(S.PENDING_CONFIRMATION)
    first, second = supplier_user_of(order), supplier_user_of(order)
    outcomes = _race(
        lambda: services.order_confirm(order=order, actor=first),
        lambda: services.order_confirm(order=order, actor=second),
    )
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["error", "ok"]
    assert OrderEvent.objects.filter(order=order, action="confirm").count() == 1
