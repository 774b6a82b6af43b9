"""Mediation through the Django admin, with the test client: queue, assign, case page, forms."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from disputes.models import Dispute, DisputeStatus, EvidenceRequest, Inspection, Remedy
from orders.models import OrderStatus
from payments.selectors import escrow_summary
from tests.disputes.factories import (
    escalated,
    inspector_for,
    listed_disputes,
    parties_for,
    under_review,
)
from tests.factories import BuyerFactory, MediatorFactory, VettingFactory
from tradeassure.core import clock

S = DisputeStatus
pytestmark = pytest.mark.django_db
QUEUE = reverse("admin:disputes_dispute_changelist")


def refetch(obj):
    return type(obj).objects.get(pk=obj.pk)


def case(dispute):
    return reverse("admin:disputes_dispute_change", args=[dispute.pk])


def decide(client, dispute, **data):
    """The two steps of the decision form: preview, then confirm."""
    url = reverse("admin:disputes_dispute_decide", args=[dispute.pk])
    preview = client.post(url, data)
    assert preview.status_code == 200, preview.content.decode()[:2000]
    assert "Confirm and execute" in preview.content.decode()
    return preview, client.post(url, {**data, "confirm": "yes"})


def test_queue_is_ordered_by_pickup_sla_and_flags_the_overdue(client, mediator):
    # given two escalated disputes: one escalated a week ago (overdue), one today
    old = escalated(parties_for("delivered"))
    Dispute.objects.filter(pk=old.pk).update(
        escalated_at=clock.now() - timedelta(days=7),
        pickup_due_at=clock.add_working_days(clock.now() - timedelta(days=7), 2),
    )
    new = escalated(parties_for("delivered"))
    client.force_login(mediator)

    # when the mediator opens the queue
    page = client.get(QUEUE).content.decode()

    # then the overdue one comes first and is flagged; both are listed
    assert page.index(old.reference) < page.index(new.reference)
    assert "OVERDUE" in page
    assert page.count("OVERDUE") == 1


def test_assign_to_me_action(client, mediator):
    dispute = escalated(parties_for("delivered"))
    client.force_login(mediator)

    response = client.post(
        QUEUE, {"action": "assign_to_me", "_selected_action": [dispute.pk]}, follow=True
    )

    assert "is now yours" in response.content.decode()
    dispute = refetch(dispute)
    assert (dispute.status, dispute.mediator_id, dispute.pickup_due_at) == (
        S.UNDER_REVIEW,
        mediator.pk,
        None,
    )


def test_case_page_shows_the_whole_dispute(client, mediator):
    parties = parties_for("delivered")
    dispute = under_review(parties, mediator)
    client.force_login(mediator)

    page = client.get(case(dispute)).content.decode()

    assert "Bluetooth speaker" in page  # the contract
    assert "USD 1,400.00" in page or "1,400.00" in page  # money held
    assert dispute.evidence.get().get_absolute_url() in page  # evidence
    assert reverse("admin:disputes_dispute_assign", args=[dispute.pk]) not in page  # theirs
    assert reverse("admin:disputes_dispute_decide", args=[dispute.pk]) in page
    assert "Escalate to a mediator" in page  # the timeline


def test_request_evidence_through_the_admin(client, mediator):
    dispute = under_review(parties_for("delivered"), mediator)
    client.force_login(mediator)
    url = reverse("admin:disputes_dispute_request_evidence", args=[dispute.pk])
    assert client.get(url).status_code == 200

    past = client.post(url, {"requested_from": "buyer", "note": "x", "due_date": "2020-01-01"})
    assert past.status_code == 400 and EvidenceRequest.objects.count() == 0

    due = (clock.now() + timedelta(days=3)).date().isoformat()
    response = client.post(
        url, {"requested_from": "supplier", "note": "QC report", "due_date": due}
    )
    assert response.status_code == 302
    request = EvidenceRequest.objects.get()
    assert (request.requested_from, request.state) == ("supplier", "open")


def test_order_an_inspection_through_the_admin(client, mediator):
    parties = parties_for("delivered")
    dispute = under_review(parties, mediator)
    inspector = inspector_for()
    client.force_login(mediator)
    url = reverse("admin:disputes_dispute_order_inspection", args=[dispute.pk])
    assert "300.00" in client.get(url).content.decode()  # the default fee is suggested

    response = client.post(
        url,
        {
            "organisation": inspector.organisation_id,
            "instructions": "AQL 2.5",
            "fee_amount": "300.00",
        },
    )

    assert response.status_code == 302
    assert refetch(dispute).status == S.AWAITING_INSPECTION
    assert Inspection.objects.get().state == Inspection.State.AWAITING_FEE
    assert parties.buyer.notifications.filter(title__contains="inspection fee").exists()


@pytest.mark.parametrize(
    ("data", "order_status", "refunded", "released"),
    [
        ({"remedy": Remedy.FULL_REFUND}, OrderStatus.REFUNDED, "1400.00", "0.00"),
        (
            {"remedy": Remedy.PARTIAL_REFUND, "refund_amount": "400.00"},
            OrderStatus.COMPLETED,
            "400.00",
            "1000.00",
        ),
        ({"remedy": Remedy.NO_REFUND}, OrderStatus.COMPLETED, "0.00", "1400.00"),
        (
            {
                "remedy": Remedy.NEW_AGREEMENT,
                "price_reduction": "100.00",
                "replacement": "on",
                "new_shipment_deadline": (clock.now() + timedelta(days=21)).date().isoformat(),
            },
            OrderStatus.READY_TO_SHIP,  # the replacement is to ship; the rest stays held
            "100.00",
            "0.00",
        ),
    ],
)
def test_decide_through_the_admin(client, mediator, data, order_status, refunded, released):
    # given a dispute under the mediator's review
    parties = parties_for("delivered")
    dispute = under_review(parties, mediator)
    client.force_login(mediator)

    # when the mediator previews and confirms the decision
    preview, response = decide(client, dispute, reason="Decided on the evidence.", **data)

    # then the preview showed the money and the decision was executed exactly as previewed
    assert f"Refund to the buyer: USD {Decimal(refunded):,.2f}" in preview.content.decode()
    assert response.status_code == 302
    dispute, summary = (
        refetch(dispute),
        escrow_summary(escrow_reference=parties.order.escrow_reference),
    )
    assert (dispute.status, dispute.resolved_via) == (S.RESOLVED, "decision")
    assert refetch(parties.order).status == order_status
    assert (summary.refunded, summary.released) == (Decimal(refunded), Decimal(released))
    assert parties.buyer.notifications.filter(title__contains="resolved").exists()
    assert parties.supplier_user.notifications.filter(title__contains="resolved").exists()


def test_new_agreement_with_a_new_deadline_through_the_admin(client, mediator):
    parties = parties_for("late")
    dispute = under_review(parties, mediator, remedy=Remedy.FULL_REFUND)
    client.force_login(mediator)
    new_date = (clock.now() + timedelta(days=21)).date()

    _preview, response = decide(
        client,
        dispute,
        remedy=Remedy.NEW_AGREEMENT,
        new_shipment_deadline=new_date.isoformat(),
        reason="Production restarted.",
    )

    assert response.status_code == 302
    order = refetch(parties.order)
    assert order.status == OrderStatus.IN_PRODUCTION and order.shipment_deadline.date() == new_date
    assert order.current_version.number == 2


def test_a_refused_decision_changes_nothing(client, mediator):
    parties = parties_for("delivered")
    dispute = under_review(parties, mediator)
    client.force_login(mediator)
    url = reverse("admin:disputes_dispute_decide", args=[dispute.pk])

    response = client.post(
        url,
        {
            "remedy": Remedy.PARTIAL_REFUND,
            "refund_amount": "99999.00",
            "reason": "x",
            "confirm": "yes",
        },
    )
    missing_reason = client.post(url, {"remedy": Remedy.FULL_REFUND, "confirm": "yes"})

    assert response.status_code == 400 and "is held" in response.content.decode()
    assert missing_reason.status_code == 400
    assert refetch(dispute).status == S.UNDER_REVIEW
    assert escrow_summary(escrow_reference=parties.order.escrow_reference).held == Decimal(
        "1400.00"
    )


def test_another_mediator_must_take_over_before_deciding(client, mediator):
    dispute = under_review(parties_for("delivered"), mediator)
    other = MediatorFactory()
    client.force_login(other)
    page = client.get(case(dispute)).content.decode()
    assert "Take over" in page
    response = client.post(
        reverse("admin:disputes_dispute_decide", args=[dispute.pk]),
        {"remedy": Remedy.FULL_REFUND, "reason": "x", "confirm": "yes"},
    )
    assert "assigned to another mediator" in response.content.decode()
    assert refetch(dispute).status == S.UNDER_REVIEW
    client.post(reverse("admin:disputes_dispute_assign", args=[dispute.pk]))
    assert refetch(dispute).mediator_id == other.pk


def test_mediators_see_only_what_their_group_permits(client, mediator):
    dispute = escalated(parties_for("delivered"))
    # vetting staff: no disputes in the admin at all
    client.force_login(VettingFactory())
    assert client.get(QUEUE).status_code == 403
    assert client.get(case(dispute)).status_code == 403
    assert (
        client.post(reverse("admin:disputes_dispute_assign", args=[dispute.pk])).status_code == 403
    )
    # a buyer is not staff
    client.force_login(BuyerFactory())
    assert client.get(QUEUE).status_code == 302
    # mediators: no add, change or delete of rows
    client.force_login(mediator)
    assert client.get(reverse("admin:disputes_dispute_add")).status_code == 403
    assert (
        client.get(reverse("admin:disputes_dispute_delete", args=[dispute.pk])).status_code == 403
    )
    assert refetch(dispute).status == S.ESCALATED


def test_queue_runs_a_constant_number_of_queries(client, mediator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    buyer = BuyerFactory()
    listed_disputes(2, buyer=buyer)
    client.force_login(mediator)
    client.get(QUEUE + "?queue=open")
    with CaptureQueriesContext(connection) as small:
        client.get(QUEUE + "?queue=open")
    listed_disputes(10, buyer=buyer)
    with CaptureQueriesContext(connection) as large:
        page = client.get(QUEUE + "?queue=open").content.decode()
    assert page.count("/change/") >= 12
    assert len(large.captured_queries) == len(small.captured_queries)


def test_pickup_sla_counts_working_days(mediator):
    # given a dispute opened on a Tuesday, escalated by the buyer on Friday (day 4)
    tuesday = clock.now().replace(year=2026, month=11, day=24, hour=10)
    with time_machine.travel(tuesday, tick=False):
        dispute = escalated(parties_for("delivered"))
    # then the mediator's pick-up is due two working days later: Tuesday, not Sunday
    assert dispute.escalated_at.weekday() == 4
    assert dispute.pickup_due_at.weekday() == 1
    assert (dispute.pickup_due_at - dispute.escalated_at).days == 4


def test_mediator_writes_to_both_parties_from_the_case_page(client, mediator):
    parties = parties_for("delivered")
    dispute = under_review(parties, mediator)
    client.force_login(mediator)

    client.post(
        reverse("admin:disputes_dispute_message", args=[dispute.pk]),
        {"body": "Please both send carton photos."},
    )

    message = dispute.messages.get()
    assert (message.author_party, message.body) == ("mediator", "Please both send carton photos.")
    assert parties.buyer.notifications.filter(title__contains="message from the mediator").exists()
    assert parties.supplier_user.notifications.filter(
        title__contains="message from the mediator"
    ).exists()
