"""A replacement agreed in a dispute after delivery: the money stays held until the replacement
has shipped, arrived and been accepted under the normal rules (receipt and claim windows anew)."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from disputes import services
from disputes.models import Remedy
from orders import services as order_services
from orders.models import OrderEvent, OrderStatus, Shipment
from payments.selectors import escrow_summary
from tests.disputes.factories import open_dispute, parties_for
from tests.orders.factories import shipping_documents
from tests.orders.helpers import snapshot
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition, ValidationFailed

pytestmark = pytest.mark.django_db
ORDER = OrderStatus


def money(order):
    return escrow_summary(escrow_reference=order.escrow_reference)


def refetch(obj):
    return type(obj).objects.get(pk=obj.pk)


def _agree_replacement(parties, deadline):
    dispute = open_dispute(parties)
    offer = services.dispute_propose(
        dispute=dispute,
        actor=parties.supplier_user,
        terms=services.OutcomeTerms(
            remedy=Remedy.NEW_AGREEMENT, replacement=True, new_shipment_deadline=deadline
        ),
    )
    services.dispute_accept(dispute=dispute, actor=parties.buyer, proposal_id=offer.pk)
    return dispute


def test_a_replacement_keeps_the_money_held_until_the_replacement_is_received_and_accepted(
    client,
):
    # given a delivered post-delivery order (USD 1,400 held) whose claim window ends in 30 days
    parties = parties_for("delivered")
    first_shipment = Shipment.objects.get(order=parties.order)
    old_completion_due = parties.order.completion_due_at
    deadline = clock.now() + timedelta(days=40)

    # when a quality dispute ends in a new agreement: the supplier ships a replacement
    dispute = _agree_replacement(parties, deadline)

    # then the order is ready to ship again with everything still held and the deadline running
    order = refetch(parties.order)
    assert refetch(dispute).outcome == Remedy.NEW_AGREEMENT
    assert order.status == ORDER.READY_TO_SHIP
    assert order.shipment_due_at == deadline == order.shipment_deadline
    assert (order.receipt_due_at, order.completion_due_at) == (None, None)
    assert (order.shipped_at, order.delivered_at) == (None, None)
    summary = money(order)
    assert (summary.held, summary.released, summary.refunded) == (Decimal("1400.00"), 0, 0)
    assert summary.frozen is False
    event = OrderEvent.objects.filter(order=order).latest("id")
    assert (event.action, event.from_status, event.to_status) == (
        "dispute_resolved_replacement",
        ORDER.DISPUTED,
        ORDER.READY_TO_SHIP,
    )
    assert event.data["replaced_shipment"]["tracking_number"] == first_shipment.tracking_number
    assert parties.supplier_user.notifications.filter(title__contains="ship the replacement")

    # when the old claim window would have ended, nothing is released by the sweep or the buyer
    with time_machine.travel(old_completion_due + timedelta(days=1), tick=False):
        assert order_services.orders_sweep_post_delivery_windows() == 0
        assert order_services.orders_sweep_receipt_windows() == 0
        before = snapshot(order)
        for refused in (order_services.order_accept_goods, order_services.order_confirm_receipt):
            with pytest.raises(InvalidTransition):
                refused(order=order, actor=parties.buyer)
        assert snapshot(order) == before
        assert money(order).held == Decimal("1400.00") and money(order).released == 0

        # when the supplier records the replacement shipment
        order = order_services.order_ship(
            order=order,
            actor=parties.supplier_user,
            carrier="DHL",
            tracking_number="REPL-0001",
            shipped_on=clock.now().date(),
            documents=shipping_documents(),
        )

        # then it replaces the first shipment (kept), the receipt window restarts, money held
        assert order.status == ORDER.SHIPPED
        replacement = Shipment.objects.get(order=order, replaces=first_shipment)
        assert order.shipment == replacement
        assert Shipment.objects.filter(order=order).count() == 2
        assert order.receipt_due_at == clock.now() + timedelta(days=30)
        assert money(order).held == Decimal("1400.00")
        assert order_services.orders_sweep_post_delivery_windows() == 0

        # when the buyer confirms receipt, the post-delivery window starts afresh
        order = order_services.order_confirm_receipt(order=order, actor=parties.buyer)
        assert order.status == ORDER.DELIVERED
        assert order.completion_due_at == clock.now() + timedelta(days=30)
        assert money(order).held == Decimal("1400.00")

        # the order page shows both shipments and their documents to the buyer
        client.force_login(parties.buyer)
        page = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
        assert "Replacement shipment" in page and "REPL-0001" in page
        assert first_shipment.tracking_number in page
        for document in first_shipment.documents.all():
            assert reverse("orders:shipment_document", args=[order.pk, document.pk]) in page

        # when the buyer accepts the replacement
        order = order_services.order_accept_goods(order=order, actor=parties.buyer)

    # then everything is released, once
    summary = money(order)
    assert order.status == ORDER.COMPLETED
    assert (summary.held, summary.released) == (Decimal("0.00"), Decimal("1400.00"))
    with time_machine.travel(clock.now() + timedelta(days=90), tick=False):
        assert order_services.orders_sweep_post_delivery_windows() == 0
    with pytest.raises(InvalidTransition):
        order_services.order_accept_goods(order=order, actor=parties.buyer)
    assert money(order).released == Decimal("1400.00")


def test_the_supplier_sees_the_replacement_to_ship_and_can_record_it_from_the_order_page(client):
    # given a replacement agreed after delivery
    parties = parties_for("delivered")
    _agree_replacement(parties, clock.now() + timedelta(days=20))
    client.force_login(parties.supplier_user)

    # when the supplier opens "Needs you" and the order page
    listing = client.get(reverse("orders:supplier_list") + "?status=action").content.decode()
    page = client.get(reverse("orders:detail", args=[parties.order.pk])).content.decode()

    # then the order is waiting for them, with the shipment form and the first shipment shown
    assert parties.order.reference in listing
    assert reverse("orders:ship", args=[parties.order.pk]) in page
    assert "MSKU1234567" in page and "to be replaced" in page


def test_a_replacement_without_a_new_shipment_deadline_is_refused_and_changes_nothing():
    # given a delivered order under dispute
    parties = parties_for("delivered")
    dispute = open_dispute(parties)
    before, proposals = snapshot(parties.order), dispute.proposals.count()

    # when the supplier offers a replacement with no date to ship it by
    with pytest.raises(ValidationFailed) as caught:
        services.dispute_propose(
            dispute=dispute,
            actor=parties.supplier_user,
            terms=services.OutcomeTerms(remedy=Remedy.NEW_AGREEMENT, replacement=True),
        )

    # then it is refused, saying what is missing, and nothing changed
    assert "new_shipment_deadline" in caught.value.fields
    assert dispute.proposals.count() == proposals
    assert snapshot(parties.order) == before
