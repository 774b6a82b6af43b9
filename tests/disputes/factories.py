"""Builders for disputes: orders reach their state through the orders services, and disputes
through ours, so every dispute in a test got where it is the way a real one would."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from accounts.models import User
from disputes import services
from disputes.models import Dispute, DisputeType, Remedy
from orders.models import Order, OrderStatus
from payments.services import payment_card_submit
from tests.factories import InspectorFactory
from tests.orders.factories import order_in, supplier_user_of, with_time_past_deadline

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


def pdf(name: str = "evidence.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF_BYTES, "application/pdf")


def png(name: str = "photo.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PNG_BYTES, "image/png")


@dataclass
class Parties:
    order: Order
    buyer: User
    supplier_user: User


def parties_for(state: str, **terms) -> Parties:
    """An order ready for a claim: "delivered" (post-delivery, received, fully paid, USD 1,400)
    or "late" (initial USD 400 paid, shipment deadline passed), "shipped" (not yet received)."""
    if state == "late":
        order = order_in(OrderStatus.IN_PRODUCTION, **terms)
        order = with_time_past_deadline(order)
    elif state == "shipped":
        order = order_in(OrderStatus.SHIPPED, **terms)
    else:
        order = order_in(OrderStatus.DELIVERED, **terms)
    return Parties(order=order, buyer=order.buyer, supplier_user=supplier_user_of(order))


def open_dispute(
    parties: Parties,
    *,
    type: str | None = None,
    remedy: str = Remedy.PARTIAL_REFUND,
    amount: Decimal | None = Decimal("300.00"),
    files=None,
    **terms,
) -> Dispute:
    if type is None:
        type = (
            DisputeType.LATE_SHIPMENT
            if parties.order.status != OrderStatus.DELIVERED
            else DisputeType.QUALITY
        )
    if remedy != Remedy.PARTIAL_REFUND:
        amount = None
    return services.dispute_open(
        order=parties.order,
        actor=parties.buyer,
        type=type,
        description="Speakers fail the drop test: 12 of 100 cracked.",
        terms=services.OutcomeTerms(remedy=remedy, refund_amount=amount, **terms),
        evidence_files=[pdf()] if files is None else files,
    )


def escalated(parties: Parties, **kwargs) -> Dispute:
    """A dispute the buyer escalated on day 4."""
    import time_machine

    dispute = open_dispute(parties, **kwargs)
    with time_machine.travel(dispute.buyer_may_escalate_at + timedelta(minutes=1), tick=False):
        services.dispute_escalate(dispute=dispute, actor=parties.buyer)
    dispute.refresh_from_db()
    return dispute


def under_review(parties: Parties, mediator: User, **kwargs) -> Dispute:
    dispute = escalated(parties, **kwargs)
    services.dispute_assign(dispute=dispute, actor=mediator)
    dispute.refresh_from_db()
    return dispute


def pay_inspection_fee(inspection, buyer: User) -> None:
    payment = services.dispute_inspection_fee_pay(inspection=inspection, actor=buyer, method="card")
    with TestCase.captureOnCommitCallbacks(execute=True):
        payment_card_submit(payment=payment, card_number="4242424242424242", actor=buyer)


def inspector_for(organisation=None) -> User:
    if organisation is None:
        return InspectorFactory()
    return InspectorFactory(organisation=organisation)


__all__ = ["supplier_user_of"]


def listed_disputes(count: int, *, buyer: User, supplier=None) -> list[Dispute]:
    """Rows for list pages only (query counts): placed orders with a dispute row each. The
    workflows are tested through the services; a list page only reads."""
    from tests.orders.factories import place_order, trade_assured_supplier
    from tradeassure.core import clock

    supplier = supplier or trade_assured_supplier()
    disputes = []
    for n in range(count):
        order = place_order(buyer=buyer, supplier=supplier)
        disputes.append(
            Dispute.objects.create(
                order=order,
                type=DisputeType.QUALITY,
                description=f"Listed dispute {n}",
                requested_remedy=Remedy.FULL_REFUND,
                currency="USD",
                opened_by=buyer,
                opened_at=clock.now(),
                order_status_at_opening="delivered",
                status="escalated" if n % 2 else "awaiting_supplier",
                escalated_at=clock.now() if n % 2 else None,
                pickup_due_at=clock.now() + timedelta(days=n) if n % 2 else None,
            )
        )
    return disputes
