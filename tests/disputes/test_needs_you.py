"""The order lists' "Needs you": a dispute counter-proposal waiting for the buyer is in it,
a finished (completed) order is not."""

from decimal import Decimal

import pytest
from django.urls import reverse

from disputes import services
from disputes.models import Remedy
from orders.models import OrderStatus
from tests.disputes.factories import open_dispute
from tests.orders.factories import order_in

pytestmark = pytest.mark.django_db


def _needs_you(client, user, list_name: str) -> str:
    client.force_login(user)
    return client.get(reverse(list_name) + "?status=action").content.decode()


def test_a_counter_proposal_waiting_for_the_buyer_needs_the_buyer(client, delivered):
    # given a claim: it waits for the supplier, not the buyer
    dispute = open_dispute(delivered, remedy=Remedy.FULL_REFUND)
    reference = delivered.order.reference
    assert reference in _needs_you(client, delivered.supplier_user, "orders:supplier_list")
    assert reference not in _needs_you(client, delivered.buyer, "orders:buyer_list")
    # when the supplier counter-proposes
    services.dispute_propose(
        dispute=dispute,
        actor=delivered.supplier_user,
        terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("200")),
        message="We refund the cracked units.",
    )
    # then it needs the buyer, and no longer the supplier
    assert reference in _needs_you(client, delivered.buyer, "orders:buyer_list")
    assert reference not in _needs_you(client, delivered.supplier_user, "orders:supplier_list")


def test_a_completed_order_does_not_need_the_buyer(client):
    order = order_in(OrderStatus.COMPLETED)
    assert order.status == OrderStatus.COMPLETED
    assert order.reference not in _needs_you(client, order.buyer, "orders:buyer_list")


def test_needs_you_runs_a_constant_number_of_queries(
    client, delivered, django_assert_max_num_queries
):
    open_dispute(delivered)
    client.force_login(delivered.buyer)
    url = reverse("orders:buyer_list") + "?status=action"
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    order_in(OrderStatus.AWAITING_PAYMENT, buyer=delivered.buyer)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(3):
        order_in(OrderStatus.AWAITING_PAYMENT, buyer=delivered.buyer)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)
