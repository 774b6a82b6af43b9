"""Demo disputes: one in every status, a mediator queue with one pick-up overdue, an inspector
with an assignment, and one dispute whose supplier deadline falls 5 minutes after seeding, so a
newcomer watches the beat sweep escalate it.

Each dispute gets its own order (purchase order number "DEMO-D-<key>"), brought to its state
through the orders and disputes services; a key whose order exists is skipped, so running
`seed_demo` twice changes nothing. Payments are captured the way the sandbox does it (a signed
provider event handled synchronously). Where a story needs time to have passed (escalated last
week), the demo moves the dispute's timer columns back; nothing else is written by hand.
"""

import io
import logging
from datetime import timedelta
from decimal import Decimal

from django.core.files import File
from django.db.models import DateField, ExpressionWrapper, F

from accounts.models import Organisation, User
from disputes import services
from disputes.models import Dispute, DisputeType, Remedy
from orders.models import Order
from suppliers.models import Supplier
from tradeassure.core import clock

logger = logging.getLogger(__name__)

DEMO_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PREFIX = "DEMO-D-"


def _pdf(name: str) -> File:
    return File(io.BytesIO(DEMO_PDF), name=name)


def _eligible_suppliers(users: dict[str, User]) -> list[tuple[Supplier, User]]:
    from suppliers.selectors import supplier_failed_rules

    found: list[tuple[Supplier, User]] = []
    for key in ("supplier", "supplier2"):
        user = users.get(key)
        # Without that user (or its organisation) there is no supplier to find.
        if user is None or user.organisation_id is None:
            continue
        supplier = Supplier.objects.filter(organisation_id=user.organisation_id).first()
        if supplier is not None and not supplier_failed_rules(supplier=supplier):
            found.append((supplier, user))
    return found


def _track_record(supplier: Supplier) -> None:
    """Completed orders from before the demo, so a handful of disputes is a realistic share of
    the supplier's orders (10%, not 40%) and does not suspend it automatically."""
    from suppliers.services import supplier_order_record_sync

    now = clock.now()
    for n in range(25):
        # Spread over the metrics window and all finished (and rated) before today.
        placed = now - timedelta(days=165 - n * 5)
        supplier_order_record_sync(
            supplier=supplier,
            order_reference=f"demo-history:disputes:{supplier.pk}:{n}",
            amount=Decimal("3200.00") + Decimal(n * 40),
            currency="USD",
            status="completed",
            placed_at=placed,
            confirmed_at=placed + timedelta(hours=8),
            shipment_deadline=placed + timedelta(days=30),
            shipped_at=placed + timedelta(days=27),
            completed_at=placed + timedelta(days=40),
            rating=4 + n % 2,
        )


def _capture(order: Order, buyer: User) -> Order:
    """Pay what is due by sandbox card and apply the provider's capture event now."""
    from orders.services import order_payment_start
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event

    payment = order_payment_start(order=order, actor=buyer, method="card")
    sandbox_deliver_event(
        event_body(
            "payment.captured",
            payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            charge_id=f"ch_demo_{payment.pk}",
        )
    )
    order.refresh_from_db()
    return order


def _order(
    key: str, *, buyer: User, supplier: Supplier, supplier_user: User, goods: str, state: str
) -> Order:
    """A post-delivery order taken to "shipped" or "delivered" through the orders services."""
    from orders import services as orders

    terms = orders.ContractTerms(
        currency="USD",
        coverage="post_delivery",
        items=[
            orders.LineItemTerms(
                description=goods,
                quality_requirements="Matches the approved sample; AQL 2.5 general inspection level II",
                quantity=Decimal("200"),
                unit="pcs",
                unit_price=Decimal("12.50"),
            )
        ],
        shipment_deadline=clock.now() + timedelta(days=40),
        incoterm="FOB",
        destination="Felixstowe, GB",
        shipping_method="sea",
        shipping_fee=Decimal("200.00"),
        initial_payment_amount=Decimal("800.00"),
        packaging="Export cartons, 20 per carton",
    )
    order = orders.order_place(
        buyer=buyer, supplier=supplier, terms=terms, purchase_order_number=f"{PREFIX}{key}"
    )
    order = orders.order_confirm(order=order, actor=supplier_user)
    order = _capture(order, buyer)
    order = orders.order_request_balance(order=order, actor=supplier_user)
    order = _capture(order, buyer)
    order = orders.order_ship(
        order=order,
        actor=supplier_user,
        carrier="COSCO",
        tracking_number=f"COSU{order.pk:07d}",
        shipped_on=clock.now().date(),
        documents=[
            orders.ShipmentDocumentUpload(kind=kind, file=_pdf(f"{kind}.pdf"))
            for kind in ("commercial_invoice", "bill_of_lading", "packing_list")
        ],
    )
    if state == "delivered":
        order = orders.order_confirm_receipt(order=order, actor=buyer)
    return order


def _open(order: Order, buyer: User, *, type: str, text: str, remedy: str, amount=None) -> Dispute:
    return services.dispute_open(
        order=order,
        actor=buyer,
        type=type,
        description=text,
        terms=services.OutcomeTerms(remedy=remedy, refund_amount=amount),
        evidence_files=[_pdf("inspection-photos.pdf")],
    )


def _history_back(dispute: Dispute, delta: timedelta) -> None:
    """Everything the seed did for this order and dispute happened a few seconds ago: move it
    all back by the same `delta`, keeping its order (placed < paid < shipped < disputed)."""
    from orders.models import Order, OrderEvent, Shipment

    moments = [
        "placed_at",
        "confirmed_at",
        "initial_paid_at",
        "balance_requested_at",
        "balance_paid_at",
        "shipped_at",
        "delivered_at",
        "disputed_at",
    ]
    Order.objects.filter(pk=dispute.order_id).update(**{f: F(f) - delta for f in moments})
    OrderEvent.objects.filter(order_id=dispute.order_id).update(created_at=F("created_at") - delta)
    Shipment.objects.filter(order_id=dispute.order_id).update(
        shipped_on=ExpressionWrapper(F("shipped_on") - delta, output_field=DateField()),
        recorded_at=F("recorded_at") - delta,
    )
    dispute.events.update(created_at=F("created_at") - delta)
    dispute.messages.update(created_at=F("created_at") - delta)
    dispute.proposals.update(created_at=F("created_at") - delta)
    dispute.evidence.update(uploaded_at=F("uploaded_at") - delta)


def _days_ago(dispute: Dispute, days: int) -> Dispute:
    """Move a fresh dispute's clock back `days` (the demo's only shortcut through time), with
    its order's whole history before it, so nothing reads as opened before its order."""
    now = clock.now()
    opened = now - timedelta(days=days)
    _history_back(dispute, timedelta(days=days))
    Dispute.objects.filter(pk=dispute.pk).update(
        opened_at=opened,
        supplier_response_due_at=None
        if dispute.supplier_answered_at
        else opened + timedelta(days=3),
        buyer_may_escalate_at=opened + timedelta(days=3),
        escalation_due_at=opened + timedelta(days=7) if days < 7 else now + timedelta(days=1),
    )
    dispute.refresh_from_db()
    return dispute


STORIES = [
    # key, goods, order state, dispute type, remedy, amount, story
    (
        "auto-escalation",
        "Bluetooth speaker BX-10",
        "delivered",
        DisputeType.QUALITY,
        Remedy.PARTIAL_REFUND,
        "500.00",
        "deadline_soon",
    ),
    (
        "awaiting",
        "USB-C charger 65W",
        "delivered",
        DisputeType.QUANTITY_SHORT,
        Remedy.PARTIAL_REFUND,
        "250.00",
        "awaiting",
    ),
    (
        "negotiating",
        "LED desk lamp",
        "delivered",
        DisputeType.DAMAGED,
        Remedy.FULL_REFUND,
        None,
        "negotiating",
    ),
    (
        "escalated-overdue",
        "Smart plug EU",
        "delivered",
        DisputeType.QUALITY,
        Remedy.FULL_REFUND,
        None,
        "escalated_overdue",
    ),
    (
        "escalated",
        "Wireless mouse M2",
        "shipped",
        DisputeType.NOT_RECEIVED,
        Remedy.FULL_REFUND,
        None,
        "escalated",
    ),
    (
        "under-review",
        "Power bank 10000 mAh",
        "delivered",
        DisputeType.QUALITY,
        Remedy.PARTIAL_REFUND,
        "900.00",
        "under_review",
    ),
    (
        "inspection",
        "Noise-cancelling headset",
        "delivered",
        DisputeType.QUALITY,
        Remedy.FULL_REFUND,
        None,
        "inspection",
    ),
    (
        "settled",
        "Phone case pack",
        "delivered",
        DisputeType.QUANTITY_SHORT,
        Remedy.PARTIAL_REFUND,
        "125.00",
        "settled",
    ),
    (
        "decided",
        "Kitchen scale",
        "delivered",
        DisputeType.DAMAGED,
        Remedy.FULL_REFUND,
        None,
        "decided",
    ),
    (
        "withdrawn",
        "HDMI cable 2 m",
        "delivered",
        DisputeType.QUALITY,
        Remedy.PARTIAL_REFUND,
        "100.00",
        "withdrawn",
    ),
]


def seed(users: dict[str, User]) -> None:
    suppliers = _eligible_suppliers(users)
    if not suppliers:
        logger.warning("Disputes demo skipped: no Trade Assurance supplier among the demo users.")
        return
    mediator = users["mediator"]
    inspector = users["inspector"]
    buyers = [users["buyer"], users.get("buyer2") or users["buyer"]]
    todo = [
        (n, story)
        for n, story in enumerate(STORIES)
        if not Order.objects.filter(purchase_order_number=f"{PREFIX}{story[0]}").exists()
    ]
    if not todo:
        return
    for supplier, _user in suppliers:
        _track_record(supplier)
    # First every order (while the suppliers are eligible), then the disputes.
    orders = {}
    for n, (key, goods, state, *_rest) in todo:
        supplier, supplier_user = suppliers[n % len(suppliers)]
        orders[key] = _order(
            key,
            buyer=buyers[n % 2],
            supplier=supplier,
            supplier_user=supplier_user,
            goods=goods,
            state=state,
        )
    for n, (key, goods, _state, kind, remedy, amount, story) in todo:
        order = orders[key]
        supplier, supplier_user = suppliers[n % len(suppliers)]
        text = {
            DisputeType.QUALITY: f"{goods}: about 15% of the units fail the contract's quality "
            "requirements (photos attached).",
            DisputeType.QUANTITY_SHORT: f"{goods}: 2 cartons (40 pcs) missing against the packing "
            "list.",
            DisputeType.DAMAGED: f"{goods}: cartons crushed, 30 units broken on arrival.",
            DisputeType.NOT_RECEIVED: f"{goods}: tracking has not moved for 3 weeks; nothing "
            "arrived.",
        }[kind]
        dispute = _open(
            order,
            buyers[n % 2],
            type=kind,
            text=text,
            remedy=remedy,
            amount=Decimal(amount) if amount else None,
        )
        _tell_story(
            dispute,
            story,
            buyer=buyers[n % 2],
            supplier_user=supplier_user,
            mediator=mediator,
            inspector=inspector,
        )


def _tell_story(dispute: Dispute, story: str, *, buyer, supplier_user, mediator, inspector) -> None:
    now = clock.now()
    if story == "deadline_soon":
        # Opened almost 3 days ago: the supplier's deadline falls 5 minutes after seeding.
        _history_back(dispute, timedelta(days=3) - timedelta(minutes=5))
        Dispute.objects.filter(pk=dispute.pk).update(
            opened_at=now - timedelta(days=3) + timedelta(minutes=5),
            supplier_response_due_at=now + timedelta(minutes=5),
            buyer_may_escalate_at=now + timedelta(minutes=5),
            escalation_due_at=now + timedelta(days=4, minutes=5),
        )
        return
    if story == "awaiting":
        return
    if story == "withdrawn":
        services.dispute_withdraw(
            dispute=dispute, actor=buyer, reason="The missing units arrived in a second shipment."
        )
        return
    if story == "settled":
        services.dispute_propose(
            dispute=dispute,
            actor=supplier_user,
            terms=services.OutcomeTerms(
                remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("100.00")
            ),
            message="We confirm 32 pcs were short-shipped; we refund their value.",
        )
        proposal = dispute.proposals.get(state="open")
        services.dispute_accept(dispute=dispute, actor=buyer, proposal_id=proposal.pk)
        return
    services.dispute_reject(
        dispute=dispute,
        actor=supplier_user,
        message="Our outgoing QC passed every carton; see the signed QC report.",
        evidence_files=[_pdf("outgoing-qc-report.pdf")],
    )
    if story == "negotiating":
        services.dispute_propose(
            dispute=dispute,
            actor=supplier_user,
            terms=services.OutcomeTerms(
                remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("375.00")
            ),
            message="We can refund the 30 broken units.",
        )
        return
    # The overdue case must have been open long enough to be escalated six days ago.
    dispute = _days_ago(dispute, 10 if story == "escalated_overdue" else 5)
    services.dispute_escalate(dispute=dispute, actor=buyer, note="We cannot agree; please decide.")
    if story == "escalated_overdue":
        escalated = now - timedelta(days=6)
        Dispute.objects.filter(pk=dispute.pk).update(
            escalated_at=escalated, pickup_due_at=clock.add_working_days(escalated, 2)
        )
        return
    if story == "escalated":
        return
    services.dispute_assign(dispute=dispute, actor=mediator)
    if story == "under_review":
        services.dispute_request_evidence(
            dispute=dispute,
            actor=mediator,
            requested_from="supplier",
            note="Upload the batch test report for the cells used in this order.",
            due_at=now + timedelta(days=2),
        )
        return
    if story == "decided":
        services.dispute_decide(
            dispute=dispute,
            actor=mediator,
            terms=services.OutcomeTerms(remedy=Remedy.FULL_REFUND),
            reason="The photos and the carrier's damage report show the goods arrived unusable; the packaging did not meet the contract.",
        )
        return
    if story == "inspection":
        organisation = (
            inspector.organisation or Organisation.objects.filter(kind="inspection").first()
        )
        assert organisation is not None, "the demo seeds an inspection company"
        inspection = services.dispute_order_inspection(
            dispute=dispute,
            actor=mediator,
            organisation=organisation,
            instructions="Draw 80 units (AQL 2.5, level II) from the buyer's warehouse; test noise cancellation and battery life against the contract.",
            fee_amount=services.inspection_fee_default("USD"),
        )
        _pay_fee(inspection, buyer)


def _pay_fee(inspection, buyer) -> None:
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event

    payment = services.dispute_inspection_fee_pay(inspection=inspection, actor=buyer, method="card")
    sandbox_deliver_event(
        event_body(
            "payment.captured",
            payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            charge_id=f"ch_demo_fee_{payment.pk}",
        )
    )
