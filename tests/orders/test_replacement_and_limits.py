"""The orders side of a replacement agreed in a dispute (refusals), and the Trade Assurance limit
re-checked when the supplier confirms."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from orders import services
from orders.models import Coverage, Order, OrderStatus
from payments.selectors import escrow_summary
from suppliers.models import Supplier
from tests.factories import MediatorFactory
from tests.orders.factories import order_in, place_order, supplier_user_of, trade_assured_supplier
from tests.orders.helpers import snapshot
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition, Unprocessable

pytestmark = pytest.mark.django_db
S = OrderStatus


def _amend_deadline(order, days: int):
    terms = services.contract_terms_of(order.current_version)
    services.order_contract_amend_by_dispute(
        order=order,
        actor=MediatorFactory(),
        terms=replace(terms, shipment_deadline=clock.now() + timedelta(days=days)),
        dispute_reference="D-9",
    )


def test_a_replacement_is_refused_for_pre_shipment_coverage_whose_money_was_released():
    # given a pre-shipment order: shipping released the whole payment to the supplier
    order = order_in(S.SHIPPED, coverage=Coverage.PRE_SHIPMENT)
    assert escrow_summary(escrow_reference=order.escrow_reference).held == 0
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    _amend_deadline(order, 20)
    before = snapshot(order)

    # when a mediator tries to resolve the dispute with a replacement
    with pytest.raises(InvalidTransition) as caught:
        services.order_dispute_resolved(
            order=order, actor=MediatorFactory(), outcome="replacement", dispute_reference="D-9"
        )

    # then it is refused (nothing held could wait for it) and nothing changed
    assert "pre-shipment" in caught.value.message
    assert snapshot(order) == before


def test_a_replacement_is_refused_for_a_dispute_opened_before_shipment():
    # given a post-delivery order disputed while in production (nothing shipped to replace)
    order = order_in(S.IN_PRODUCTION)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    before = snapshot(order)

    # when a replacement outcome is attempted
    with pytest.raises(InvalidTransition):
        services.order_dispute_resolved(
            order=order, actor=MediatorFactory(), outcome="replacement", dispute_reference="D-9"
        )

    # then nothing changed
    assert snapshot(order) == before


def test_a_replacement_without_a_future_shipment_deadline_is_refused_and_changes_nothing():
    # given a delivered order under dispute, its contract deadline long past
    order = order_in(S.DELIVERED)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    Order.objects.filter(pk=order.pk).update(shipment_deadline=clock.now() - timedelta(days=1))
    before = snapshot(order)

    # when the dispute is resolved with a replacement but no new deadline was agreed
    with pytest.raises(Unprocessable) as caught:
        services.order_dispute_resolved(
            order=order, actor=MediatorFactory(), outcome="replacement", dispute_reference="D-9"
        )

    # then it is refused, the escrow stays frozen, and nothing changed
    assert caught.value.code == "replacement_deadline_missing"
    assert snapshot(order) == before
    assert escrow_summary(escrow_reference=order.escrow_reference).frozen


def test_a_replacement_can_be_refunded_in_full_if_the_supplier_misses_its_deadline():
    # given a replacement agreed with a deadline in 10 days (USD 1,400 still held)
    order = order_in(S.DELIVERED)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    _amend_deadline(order, 10)
    order = services.order_dispute_resolved(
        order=order, actor=MediatorFactory(), outcome="replacement", dispute_reference="D-9"
    )
    assert order.status == S.READY_TO_SHIP

    # when the deadline passes unshipped and the buyer cancels
    with time_machine.travel(order.shipment_due_at + timedelta(minutes=1), tick=False):
        assert services.orders_sweep_shipment_deadlines() == 1
        order = services.order_cancel_late_with_refund(order=order, actor=order.buyer)

    # then the whole held amount goes back to the buyer
    summary = escrow_summary(escrow_reference=order.escrow_reference)
    assert order.status == S.REFUNDED
    assert (summary.refunded, summary.held, summary.released) == (Decimal("1400.00"), 0, 0)


def test_confirming_is_refused_when_the_supplier_has_no_limit_left_and_changes_nothing():
    # given two pending orders of USD 1,400 that fitted a USD 3,000 limit when placed
    supplier = trade_assured_supplier(ta_limit_usd=Decimal("3000.00"))
    first = place_order(supplier=supplier)
    place_order(supplier=supplier)
    # and the limit since recomputed down to USD 2,000 (exposure now over it)
    Supplier.objects.filter(pk=supplier.pk).update(ta_limit_usd=Decimal("2000.00"))
    before = snapshot(first)

    # when the supplier confirms the first order
    with pytest.raises(Unprocessable) as caught:
        services.order_confirm(order=first, actor=supplier_user_of(first))

    # then it is refused with the limit left, and nothing changed (no escrow opened either)
    assert caught.value.code == "trade_assurance_limit_exceeded"
    assert caught.value.fields["available_usd"] == ["600.00"]
    assert snapshot(first) == before
    assert Order.objects.get(pk=first.pk).status == S.PENDING_CONFIRMATION


def test_confirming_counts_the_order_itself_once():
    # given two pending USD 1,400 orders and a limit of exactly USD 2,800
    supplier = trade_assured_supplier(ta_limit_usd=Decimal("3000.00"))
    first = place_order(supplier=supplier)
    place_order(supplier=supplier)
    Supplier.objects.filter(pk=supplier.pk).update(ta_limit_usd=Decimal("2800.00"))

    # when the supplier confirms one of them
    order = services.order_confirm(order=first, actor=supplier_user_of(first))

    # then it is confirmed (its own amount is not counted twice)
    assert order.status == S.AWAITING_PAYMENT


def test_resuming_to_ready_to_ship_is_not_treated_as_a_replacement():
    # given an order ready to ship, disputed with 45 days left on its shipment deadline
    order = order_in(S.READY_TO_SHIP)
    order = services.order_dispute_opened(order=order, actor=order.buyer)
    left = order.paused_timers["shipment_due_at"]

    # when the dispute ends 10 days later and the order simply continues
    with time_machine.travel(order.disputed_at + timedelta(days=10), tick=False):
        order = services.order_dispute_resolved(
            order=order, actor=MediatorFactory(), outcome="resume", dispute_reference="D-9"
        )
        # then the paused time is what is left (the deadline moved by the pause)
        assert order.status == S.READY_TO_SHIP
        assert abs((order.shipment_due_at - clock.now()).total_seconds() - left) < 5
    assert "replaced_shipment" not in order.events.latest("id").data
