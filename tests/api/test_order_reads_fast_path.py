"""The order list and detail written as plain dicts give exactly the serializers' JSON, in a
constant number of queries whatever the number of orders, lines and timeline rows."""

import json

import pytest
from rest_framework.renderers import JSONRenderer

from orders import selectors, services
from orders.api.representations import ORDER_LIST_VALUES, order_detail_data, order_row
from orders.api.serializers import OrderDetailSerializer, OrderSerializer
from orders.models import Order, OrderStatus
from tests.factories import BuyerFactory
from tests.orders.factories import (
    ContractTermsFactory,
    LineItemTermsFactory,
    order_in,
    place_order,
    supplier_user_of,
)
from tests.orders.factories import trade_assured_supplier as assured_supplier

pytestmark = pytest.mark.django_db
S = OrderStatus
ORDERS = "/api/v1/orders/"


def _json(data) -> object:
    """As the client receives it (Decimals and datetimes through DRF's renderer)."""
    return json.loads(JSONRenderer().render(data))


def _order_with_a_proposal():
    order = order_in(S.AWAITING_PAYMENT)
    terms = ContractTermsFactory(
        items=[LineItemTermsFactory(), LineItemTermsFactory(description="Spare cable")]
    )
    services.order_propose_changes(
        order=order, actor=supplier_user_of(order), terms=terms, note="Two lines"
    )
    return order


def _rated_order():
    order = order_in(S.COMPLETED)
    services.order_rate(order=order, actor=order.buyer, score=4, comment="Good")
    return order


@pytest.mark.parametrize(
    "make",
    [
        lambda: order_in(S.PENDING_CONFIRMATION),
        lambda: order_in(S.CANCELLED),
        _order_with_a_proposal,
        lambda: order_in(S.IN_PRODUCTION),
        lambda: order_in(S.SHIPPED),
        _rated_order,
    ],
    ids=["pending", "cancelled", "proposal", "paid", "shipped", "completed-rated"],
)
def test_the_plain_detail_and_row_are_the_serializers_json(make):
    # given an order in a state with its own parts (proposal, money held, shipment, rating)
    order = make()
    for user in (order.buyer, supplier_user_of(order)):
        detail = selectors.order_detail_for_user(user=user, pk=order.pk)
        # then the plain detail is the serializer's, for each party
        assert _json(order_detail_data(detail)) == _json(OrderDetailSerializer(detail).data)
    # and the list row from `.values()` is the list serializer's
    row = selectors.orders_visible_to(order.buyer).filter(pk=order.pk).values(*ORDER_LIST_VALUES)
    fresh = Order.objects.select_related("supplier", "buyer_organisation").get(pk=order.pk)
    assert _json(order_row(row.get())) == _json(OrderSerializer(fresh).data)


@pytest.mark.parametrize("rows", [2, 30])
def test_the_order_list_runs_the_same_queries_for_2_or_30_orders(
    rows, api_client_for, django_assert_max_num_queries
):
    # given a buyer with some orders and a second page for the larger count
    buyer = BuyerFactory()
    supplier = assured_supplier()
    for _ in range(rows):
        place_order(buyer=buyer, supplier=supplier)
    client = api_client_for(buyer)
    assert client.get(ORDERS).status_code == 200  # the key's first-use touch is behind us
    # when the list is read: API key, the page
    with django_assert_max_num_queries(2):
        response = client.get(ORDERS)
    # then it answers the page (and a cursor to the next one when there is one)
    assert len(response.json()["results"]) == min(rows, 25)
    assert (response.json()["next"] is not None) is (rows > 25)
    if rows > 25:
        with django_assert_max_num_queries(2):
            second = client.get(response.json()["next"])
        assert len(second.json()["results"]) == rows - 25


@pytest.mark.parametrize("lines", [1, 6])
def test_the_order_detail_runs_the_same_queries_for_1_or_6_lines(
    lines, api_client_for, django_assert_max_num_queries
):
    # given a completed order (versions, events, shipment with documents, escrow) of n lines
    terms = {"items": [LineItemTermsFactory() for _ in range(lines)]} if lines > 1 else {}
    order = order_in(S.COMPLETED, **terms)
    client = api_client_for(order.buyer)
    assert client.get(f"{ORDERS}{order.pk}/").status_code == 200
    # when its detail is read: API key, order (with its counts of versions and shipments),
    # events, versions with their lines, shipments with their documents, escrow with its sums
    with django_assert_max_num_queries(6):
        response = client.get(f"{ORDERS}{order.pk}/")
    # then it is answered in full, with an ETag that a second read can send back for a 304
    assert response.status_code == 200
    assert len(response.json()["contract"]["items"]) == lines
    etag = response.headers["ETag"]
    assert client.get(f"{ORDERS}{order.pk}/", HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.parametrize(
    "status",
    [S.AWAITING_PAYMENT, S.IN_PRODUCTION, S.SHIPPED, S.COMPLETED, S.REFUNDED],
)
def test_the_one_query_escrow_summary_is_the_per_escrow_sums(status, django_assert_num_queries):
    from payments.models import Escrow
    from payments.selectors import _escrow_sums, _summary, escrow_summary

    # given an order whose escrow is open, paid, released or refunded
    order = order_in(status)
    escrow = Escrow.objects.get(reference=order.escrow_reference)
    # when its money is read in one query
    with django_assert_num_queries(1):
        summary = escrow_summary(escrow_reference=order.escrow_reference)
    # then it is what the per-escrow sums give
    assert summary == _summary(escrow, _escrow_sums([escrow.pk]).get(escrow.pk))


def test_an_outsider_still_gets_404_from_the_order_detail(api_client_for):
    # given a completed order and a buyer of another company
    order = order_in(S.COMPLETED)
    outsider = api_client_for(BuyerFactory())
    # when the outsider asks for it, then it does not exist for them
    response = outsider.get(f"{ORDERS}{order.pk}/")
    assert response.status_code == 404
    assert response.json()["code"] == "order_not_found"
