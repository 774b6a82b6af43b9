"""The order page a buyer trusts with money: the progress stepper, the money at a glance, the one
next step, and the supplier's work queue; each a constant number of queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import selectors
from orders.models import Order, OrderStatus
from tests.disputes.factories import open_dispute, parties_for
from tests.orders.factories import order_in, supplier_user_of
from tradeassure.core import clock
from tradeassure.core.errors import NotFound

pytestmark = pytest.mark.django_db
S = OrderStatus


def states(order: Order) -> list[tuple[str, str]]:
    order = selectors.order_for_user(user=order.buyer, pk=order.pk)
    return [(step.key, step.state) for step in selectors.order_progress(order)]


@pytest.mark.parametrize(
    ("status", "current"),
    [
        (S.PENDING_CONFIRMATION, "confirmed"),
        (S.AWAITING_PAYMENT, "paid"),
        (S.IN_PRODUCTION, "paid"),  # a balance is still due
        (S.READY_TO_SHIP, "shipped"),
        (S.SHIPPED, "received"),
        (S.DELIVERED, "completed"),
    ],
)
def test_the_stepper_marks_where_the_order_is(status, current):
    # given an order brought to `status` through the services
    order = order_in(status)

    # when its progress is read
    steps = states(order)

    # then every step before the current one is done, the rest to come
    keys = [key for key, _state in steps]
    assert keys == ["placed", "confirmed", "paid", "shipped", "received", "completed"]
    at = keys.index(current)
    assert [state for _k, state in steps] == ["done"] * at + ["current"] + ["todo"] * (5 - at)


def test_a_completed_order_is_done_and_a_cancelled_one_stops_where_it_was():
    completed = order_in(S.COMPLETED)
    assert {state for _k, state in states(completed)} == {"done"}
    refunded = order_in(S.REFUNDED)
    steps = states(refunded)
    assert steps[-1] == ("refunded", "stopped")
    assert [key for key, _s in steps[:-1]] == ["placed", "confirmed", "paid"]


def test_a_dispute_is_shown_at_the_step_it_branched_from():
    # given a received order with a dispute open on it
    parties = parties_for("delivered")
    open_dispute(parties)
    order = selectors.order_for_user(user=parties.buyer, pk=parties.order.pk)

    # when the progress is read
    steps = {step.key: step for step in selectors.order_progress(order)}

    # then the dispute hangs off "received" and the current step says it is on hold
    assert steps["received"].state == "done" and steps["received"].disputes
    assert steps["completed"].state == "current" and "dispute" in steps["completed"].note


def test_the_order_page_leads_with_the_money_and_the_next_step(client):
    # given a confirmed order waiting for the buyer's initial payment
    order = order_in(S.AWAITING_PAYMENT)
    client.force_login(order.buyer)

    # when the buyer opens it
    page = client.get(order.get_absolute_url()).content.decode()

    # then the stepper, the money at a glance and the next step come before the contract
    stepper, money, step, contract = (
        page.index('class="stepper"'),
        page.index('class="money-summary"'),
        page.index('class="next-step"'),
        page.index("<h2>Contract"),
    )
    assert stepper < money < step < contract
    assert 'aria-current="step"' in page
    total = f"USD {order.total:,.2f}"
    initial = f"USD {order.initial_payment_amount:,.2f}"
    assert f"<dt>Total</dt><dd>{total}</dd>" in page
    assert f"Initial payment {initial}, <time datetime=" in page
    assert "Your next step: pay the initial payment" in page

    # and the supplier, with nothing to do, is told whom the order waits for
    client.force_login(supplier_user_of(order))
    page = client.get(order.get_absolute_url()).content.decode()
    assert "Nothing needed from you now" in page
    assert "Waiting for the buyer to pay the initial payment." in page


def test_the_order_page_runs_the_same_queries_early_and_late_in_the_story(
    client, django_assert_num_queries
):
    # given an order just shipped (one shipment, three documents) and one further on: received,
    # its receipt window extended (more events, the same kind of shipment)
    from orders import services

    early = order_in(S.SHIPPED)
    late = order_in(S.SHIPPED)
    late = services.order_extend_receipt_window(order=late, actor=late.buyer)
    late = services.order_confirm_receipt(order=late, actor=late.buyer)
    assert late.events.count() > early.events.count()
    client.force_login(early.buyer)
    with CaptureQueriesContext(connection) as first:
        assert client.get(early.get_absolute_url()).status_code == 200
    client.force_login(late.buyer)
    # then both pages run the same number of queries (the stepper reads the prefetched timeline)
    with django_assert_num_queries(len(first.captured_queries)):
        assert client.get(late.get_absolute_url()).status_code == 200


def test_a_disputed_order_page_runs_the_same_queries_however_long_the_dispute(
    client, django_assert_num_queries
):
    # given two disputed orders, the second with a counter-offer and messages
    from disputes import services as dispute_services
    from disputes.terms import OutcomeTerms

    short = parties_for("delivered")
    open_dispute(short)
    long = parties_for("delivered")
    dispute = open_dispute(long)
    dispute_services.dispute_propose(
        dispute=dispute,
        actor=long.supplier_user,
        terms=OutcomeTerms(remedy="partial_refund", refund_amount=Decimal("100.00")),
        message="Half?",
    )
    client.force_login(short.buyer)
    with CaptureQueriesContext(connection) as first:
        assert client.get(short.order.get_absolute_url()).status_code == 200
    client.force_login(long.buyer)
    with django_assert_num_queries(len(first.captured_queries)):
        assert client.get(long.order.get_absolute_url()).status_code == 200


def _orders_of_one_supplier(count: int, first: Order | None = None) -> list[Order]:
    from tests.orders.factories import place_order

    orders = [first] if first else []
    supplier = first.supplier if first else None
    while len(orders) < count:
        order = place_order(supplier=supplier) if supplier else place_order()
        supplier = order.supplier
        orders.append(order)
    return orders


def test_the_work_queue_lists_what_needs_the_supplier_soonest_first(client):
    # given three orders of one supplier: two to confirm, one paid (to produce and ship)
    paid = order_in(S.IN_PRODUCTION)
    from tests.orders.factories import place_order

    soon = place_order(supplier=paid.supplier)
    later = place_order(supplier=paid.supplier)
    Order.objects.filter(pk=later.pk).update(confirmation_due_at=clock.now() + timedelta(days=40))
    client.force_login(supplier_user_of(paid))

    # when the supplier opens the incoming orders and the dashboard
    queue = selectors.supplier_work_queue(user=supplier_user_of(paid))
    page = client.get(reverse("orders:supplier_list")).content.decode()
    dashboard = client.get(reverse("suppliers:dashboard")).content.decode()

    # then the queue is sorted by deadline and shown on both pages
    dues = [item.due for item in queue]
    assert dues == sorted(dues)
    ids = [item.order.pk for item in queue]
    assert ids.index(soon.pk) < ids.index(later.pk)
    assert {soon.pk, later.pk, paid.pk} <= {item.order.pk for item in queue}
    for html in (page, dashboard):
        assert 'id="work-queue"' in html and soon.reference in html
    assert "Confirm the order or propose changes" in page


def test_the_supplier_dashboard_runs_a_constant_number_of_queries(
    client, django_assert_num_queries
):
    # given a supplier with 2 orders, then 10 more
    orders = _orders_of_one_supplier(2)
    user = supplier_user_of(orders[0])
    client.force_login(user)
    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse("suppliers:dashboard")).status_code == 200
    _orders_of_one_supplier(12, first=orders[0])
    # then the dashboard (with its work queue) runs the same number of queries
    with django_assert_num_queries(len(small.captured_queries)):
        page = client.get(reverse("suppliers:dashboard")).content.decode()
    assert page.count("/orders/") >= 12


def test_the_money_summary_shows_the_refund_after_a_late_cancellation(client):
    order = order_in(S.REFUNDED)
    client.force_login(order.buyer)
    page = client.get(order.get_absolute_url()).content.decode()
    # (the order was paid in full before the deadline passed: all of it comes back)
    refunded = f"USD {order.total:,.2f}"
    assert f"<dt>Refunded</dt><dd>{refunded}</dd>" in page
    assert "<dt>Held in escrow</dt><dd>USD 0.00</dd>" in page
    assert order.total > Decimal(0)


# --- the order read in four queries (versions with lines, shipments with documents) ---------


def test_the_order_page_of_a_completed_order_runs_at_most_ten_queries(
    client, django_assert_max_num_queries
):
    # given a completed order (versions, shipment with documents, escrow) seen by its buyer
    order = order_in(S.COMPLETED)
    client.force_login(order.buyer)
    assert client.get(order.get_absolute_url()).status_code == 200
    # when its page is read: session, user, order, events, versions with lines, shipments with
    # documents, escrow, messages, read receipts, the bell
    with django_assert_max_num_queries(10):
        response = client.get(order.get_absolute_url())
    # then it is the full page
    assert response.status_code == 200
    assert order.reference in response.content.decode()


def test_the_order_read_gives_what_the_prefetches_gave_even_for_a_version_without_lines(
    django_assert_max_num_queries,
):
    # given a shipped order with a second (declined) version that has no lines and a second
    # shipment without documents (rows no service writes)
    from orders.models import Shipment

    order = order_in(S.SHIPPED)
    lineless = order.current_version
    lineless.pk = None
    lineless.number = 2
    lineless.state = "declined"
    lineless.save(force_insert=True)
    bare = Shipment.objects.create(
        order=order,
        carrier="Later",
        tracking_number="T2",
        shipped_on=clock.now().date(),
        recorded_at=clock.now() + timedelta(seconds=1),
        recorded_by=supplier_user_of(order),
        replaces=order.shipment,  # a replacement whose documents are not uploaded
    )
    # when the order is read for its page
    read = selectors.order_for_user(user=order.buyer, pk=order.pk)
    # then every version and shipment is there, in order, with its own lines and documents
    # (the plain reads, as before), and reading them costs no further query
    with django_assert_max_num_queries(0):
        versions = [(v.number, len(v.items.all())) for v in read.versions.all()]
        shipments = [(s.pk, len(s.documents.all())) for s in read.shipments.all()]
    assert versions == [(1, 1), (2, 0)]
    assert shipments[-1] == (bare.pk, 0) and shipments[0][1] == 3
    assert read.shipment.pk == bare.pk


def test_an_outsider_still_gets_404_from_the_order_read_and_the_page(client):
    from tests.factories import BuyerFactory

    # given a completed order and a buyer of another company
    order = order_in(S.COMPLETED)
    outsider = BuyerFactory()
    # when the outsider reads it (selector, page), then there is no such order for them
    with pytest.raises(NotFound):
        selectors.order_for_user(user=outsider, pk=order.pk)
    client.force_login(outsider)
    assert client.get(order.get_absolute_url()).status_code == 404
