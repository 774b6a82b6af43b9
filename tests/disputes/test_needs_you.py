"""What waits for whom around a dispute: the order lists' "Needs you" (a counter-proposal
waiting for the buyer is in it, a completed order is not), and one notice per party when a
dispute is decided."""

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


@pytest.mark.parametrize(
    "terms",
    [
        services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("250.00")),
        services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
        services.OutcomeTerms(remedy=Remedy.NO_REFUND),
    ],
    ids=["partial", "full", "none"],
)
def test_a_decision_sends_one_notice_per_party(delivered, mediator, terms):
    from tests.disputes.factories import under_review
    from tradeassure.platform.models import Notification

    # given a dispute under review
    dispute = under_review(delivered, mediator)
    before = {
        user.pk: Notification.objects.filter(recipient=user).count()
        for user in (delivered.buyer, delivered.supplier_user)
    }
    # when the mediator decides
    services.dispute_decide(dispute=dispute, actor=mediator, terms=terms, reason="Decided.")
    # then each party got exactly one notice, which says what happens to the order
    for user in (delivered.buyer, delivered.supplier_user):
        new = Notification.objects.filter(recipient=user).order_by("-id")
        assert new.count() - before[user.pk] == 1, list(new.values_list("title", flat=True))
        assert "the order is now" in new.first().title
