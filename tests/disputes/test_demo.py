"""The disputes demo: every status, a mediator queue with an overdue case, an inspector's
assignment, an auto-escalation a few minutes away; running it twice changes nothing."""

from collections import Counter
from datetime import timedelta

import pytest

from disputes import demo
from disputes.models import Dispute, DisputeEvent, DisputeStatus, Inspection
from disputes.selectors import mediation_queue, pickup_overdue
from suppliers.models import SupplierOrderRecord
from tests.orders.factories import trade_assured_supplier
from tradeassure.core import clock
from tradeassure.platform.demo import seed_demo_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(db):
    users = seed_demo_users()
    for key in ("supplier", "supplier2"):
        trade_assured_supplier(organisation=users[key].organisation)
    return users


def test_demo_covers_every_status_and_is_idempotent(users):
    # when the demo runs twice
    demo.seed(users)
    counts = (
        Dispute.objects.count(),
        DisputeEvent.objects.count(),
        SupplierOrderRecord.objects.count(),
    )
    demo.seed(users)

    # then nothing changed the second time
    assert counts == (
        Dispute.objects.count(),
        DisputeEvent.objects.count(),
        SupplierOrderRecord.objects.count(),
    )
    # and every status is there
    statuses = Counter(Dispute.objects.values_list("status", flat=True))
    assert set(statuses) == set(DisputeStatus.values)
    # the mediator has work waiting, one pick-up overdue
    queue = list(mediation_queue())
    assert len(queue) >= 3 and sum(pickup_overdue(d) for d in queue) == 1
    # the inspector has a paid assignment
    inspection = Inspection.objects.get()
    assert inspection.state == Inspection.State.ASSIGNED
    assert inspection.organisation_id == users["inspector"].organisation_id
    # one supplier deadline falls a few minutes from now (the newcomer watches it escalate)
    soon = Dispute.objects.filter(
        status=DisputeStatus.AWAITING_SUPPLIER,
        supplier_response_due_at__lte=clock.now() + timedelta(minutes=10),
    )
    assert soon.count() == 1
    # no dispute was escalated before it was opened
    assert not [
        d.pk for d in Dispute.objects.exclude(escalated_at=None) if d.escalated_at < d.opened_at
    ]
    # and the demo suppliers stay eligible for new orders
    from suppliers.selectors import supplier_failed_rules

    for key in ("supplier", "supplier2"):
        supplier = users[key].organisation.supplier
        supplier.refresh_from_db()
        assert supplier_failed_rules(supplier=supplier) == []


def test_demo_dates_are_sane(users):
    # given the disputes demo and the suppliers' track records
    from django.db.models import F

    from orders.models import OrderEvent
    from suppliers import demo as suppliers_demo

    suppliers_demo.seed(users)
    demo.seed(users)
    now = clock.now()
    # then no order record (and its rating) is dated in the future
    assert not SupplierOrderRecord.objects.filter(completed_at__gt=now).exists()
    assert not SupplierOrderRecord.objects.filter(placed_at__gt=now).exists()
    # and no dispute was opened before its order was placed, nor before the order's events
    assert not Dispute.objects.filter(opened_at__lt=F("order__placed_at")).exists()
    for dispute in Dispute.objects.select_related("order"):
        first_order_event = OrderEvent.objects.filter(order=dispute.order).order_by("created_at")
        assert first_order_event.first().created_at <= dispute.opened_at, dispute.reference
        opened = dispute.events.order_by("created_at").first()
        assert opened.created_at <= now and abs(opened.created_at - dispute.opened_at) < timedelta(
            minutes=1
        ), dispute.reference
