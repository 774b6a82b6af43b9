"""Demo orders in every status, for the demo buyers and the two approved demo suppliers.

Every order is made through the orders services (and paid through the payments services, the way
the sandbox captures a card), so its timeline, money and supplier record are real. A few timers
are set to fire 3 to 10 minutes after seeding, so a newcomer watches the sweeps act: an order
auto-cancelled for no confirmation, one for no payment, one flagged late, one whose receipt is
confirmed automatically, one completed (and paid out) when its claim window closes. One order
awaiting payment is due just over 3 days after seeding, so its 3-day reminder goes out in the
first minutes.

Idempotent: each story carries a purchase order number "DEMO-O-<key>"; existing ones are skipped.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import cast

from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import User
from orders import services
from orders.models import ContractVersion, Coverage, Order, OrderStatus, ShipmentDocument
from suppliers.models import Product, Supplier
from tradeassure.core import clock

logger = logging.getLogger(__name__)
S = OrderStatus
PREFIX = "DEMO-O-"
REMINDER_DEMO_MINUTES = 3 * 24 * 60 + 2
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass(frozen=True)
class Story:
    key: str
    buyer: str  # demo user key
    supplier: str  # demo user key of the supplier's staff
    state: str  # the status to reach (plus "late", "proposed", "rated")
    goods: str
    quantity: int
    unit_price: str
    coverage: str = Coverage.POST_DELIVERY
    balance: bool = True  # False: the whole amount is the initial payment
    timer: tuple[str, int] | None = None  # (due field, minutes after seeding)


STORIES = [
    Story(
        "pending",
        "buyer",
        "supplier",
        S.PENDING_CONFIRMATION,
        "USB-C fast charger 65W",
        500,
        "4.80",
    ),
    Story(
        "proposed",
        "buyer2",
        "supplier2",
        "proposed",
        "Food-grade storage box 2 L",
        2000,
        "1.15",
    ),
    Story(
        "confirm-timeout",
        "buyer",
        "supplier2",
        S.PENDING_CONFIRMATION,
        "Injection-moulded housing (ABS)",
        5000,
        "0.42",
        timer=("confirmation_due_at", 3),
    ),
    Story(
        "awaiting-payment",
        "buyer",
        "supplier",
        S.AWAITING_PAYMENT,
        "Power bank 10,000 mAh",
        500,
        "6.10",
        # Due just over 3 days after seeding: its 3-day reminder reaches the buyer (bell and
        # email) about two minutes after seeding (tradeassure.platform.reminders).
        timer=("payment_due_at", REMINDER_DEMO_MINUTES),
    ),
    Story(
        "payment-timeout",
        "buyer2",
        "supplier",
        S.AWAITING_PAYMENT,
        "Bluetooth earbuds TW-20",
        300,
        "7.35",
        timer=("payment_due_at", 5),
    ),
    Story(
        "in-production",
        "buyer",
        "supplier",
        S.IN_PRODUCTION,
        "Bluetooth earbuds TW-20",
        400,
        "7.20",
    ),
    Story(
        "ships-late",
        "buyer",
        "supplier2",
        S.IN_PRODUCTION,
        "Food-grade storage box 2 L",
        2500,
        "1.10",
        timer=("shipment_due_at", 6),
    ),
    Story("late", "buyer2", "supplier", "late", "USB-C fast charger 65W", 600, "4.70"),
    Story(
        "awaiting-balance",
        "buyer",
        "supplier2",
        S.AWAITING_BALANCE,
        "Injection-moulded housing (ABS)",
        6000,
        "0.41",
    ),
    Story(
        "ready-to-ship",
        "buyer2",
        "supplier2",
        S.READY_TO_SHIP,
        "Food-grade storage box 2 L",
        2000,
        "1.15",
        balance=False,
    ),
    Story("shipped", "buyer", "supplier", S.SHIPPED, "Power bank 10,000 mAh", 500, "6.00"),
    Story(
        "receipt-timeout",
        "buyer2",
        "supplier",
        S.SHIPPED,
        "USB-C fast charger 65W",
        500,
        "4.80",
        timer=("receipt_due_at", 8),
    ),
    Story(
        "delivered",
        "buyer",
        "supplier2",
        S.DELIVERED,
        "Injection-moulded housing (ABS)",
        5000,
        "0.42",
    ),
    Story(
        "claim-window-closes",
        "buyer",
        "supplier",
        S.DELIVERED,
        "Bluetooth earbuds TW-20",
        300,
        "7.35",
        timer=("completion_due_at", 10),
    ),
    Story("completed", "buyer", "supplier", "rated", "USB-C fast charger 65W", 500, "4.75"),
    Story(
        "completed-pre-shipment",
        "buyer2",
        "supplier2",
        S.COMPLETED,
        "Food-grade storage box 2 L",
        2000,
        "1.12",
        coverage=Coverage.PRE_SHIPMENT,
    ),
    Story("cancelled", "buyer2", "supplier", S.CANCELLED, "Power bank 10,000 mAh", 500, "6.10"),
    Story(
        "refunded",
        "buyer",
        "supplier2",
        S.REFUNDED,
        "Injection-moulded housing (ABS)",
        5000,
        "0.40",
    ),
]


def _capture(order: Order, buyer: User) -> Order:
    """Pay what is due by sandbox card and apply the provider's signed capture event now."""
    from payments.providers.sandbox import event_body
    from payments.tasks import sandbox_deliver_event

    payment = services.order_payment_start(order=order, actor=buyer, method="card")
    sandbox_deliver_event(
        event_body(
            "payment.captured",
            payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            charge_id=f"ch_demo_order_{payment.pk}",
        )
    )
    return Order.objects.get(pk=order.pk)


def _documents() -> list[services.ShipmentDocumentUpload]:
    return [
        services.ShipmentDocumentUpload(
            kind=kind, file=SimpleUploadedFile(f"{kind}.pdf", DEMO_PDF, "application/pdf")
        )
        for kind in ShipmentDocument.Kind.values
    ]


def _terms(story: Story, supplier: Supplier) -> services.ContractTerms:
    product = Product.objects.filter(supplier=supplier, name=story.goods, is_active=True).first()
    price = Decimal(story.unit_price)
    quantity = Decimal(story.quantity)
    if product is not None:
        quantity = max(quantity, Decimal(product.minimum_order_quantity))
    shipping = Decimal("180.00")
    total = quantity * price + shipping
    initial = total if not story.balance else (total * Decimal("0.3")).quantize(Decimal("1"))
    return services.ContractTerms(
        currency="USD",
        coverage=story.coverage,
        items=[
            services.LineItemTerms(
                description=story.goods,
                quality_requirements=(
                    "Matches the approved golden sample; AQL 2.5 (general inspection level II); "
                    "every unit passes the functional test."
                ),
                quantity=quantity,
                unit=product.unit if product else "pcs",
                unit_price=price,
                specifications=product.specifications if product else "",
                product_id=product.pk if product else None,
            )
        ],
        shipment_deadline=clock.now() + timedelta(days=45),
        incoterm="FOB",
        destination="Felixstowe, GB",
        shipping_method="sea",
        shipping_fee=shipping,
        initial_payment_amount=initial,
        packaging="Export cartons, 20 units per carton, palletised",
        customisation="Buyer's logo on the unit and the gift box",
    )


def _play(story: Story, buyer: User, supplier: Supplier, staff: User) -> Order:
    order = services.order_place(
        buyer=buyer,
        supplier=supplier,
        terms=_terms(story, supplier),
        purchase_order_number=f"{PREFIX}{story.key}",
        note="Demo order",
    )
    if story.state == S.PENDING_CONFIRMATION:
        return order
    if story.state == "proposed":
        from dataclasses import replace

        # order_place has just set the first version.
        terms = services.contract_terms_of(cast(ContractVersion, order.current_version))
        item = terms.items[0]
        services.order_propose_changes(
            order=order,
            actor=staff,
            terms=replace(
                terms,
                items=[replace(item, unit_price=item.unit_price + Decimal("0.05"))],
                shipment_deadline=terms.shipment_deadline + timedelta(days=7),
            ),
            note="Resin prices rose this month; we also need one more week for the moulds.",
        )
        return order
    if story.state == S.CANCELLED:
        return services.order_cancel(order=order, actor=buyer, reason="Found a closer supplier.")
    order = services.order_confirm(order=order, actor=staff)
    if story.state == S.AWAITING_PAYMENT:
        return order
    order = _capture(order, buyer)
    if story.state == S.IN_PRODUCTION:
        return order
    if story.state in ("late", S.REFUNDED):
        past = clock.now() - timedelta(hours=2)
        Order.objects.filter(pk=order.pk).update(shipment_due_at=past, shipment_deadline=past)
        services.order_flag_late(order=order)
        if story.state == S.REFUNDED:
            return services.order_cancel_late_with_refund(
                order=order, actor=buyer, reason="The goods were needed for a launch date."
            )
        return Order.objects.get(pk=order.pk)
    if order.balance_amount > 0:
        order = services.order_request_balance(order=order, actor=staff)
        if story.state == S.AWAITING_BALANCE:
            return order
        order = _capture(order, buyer)
    else:
        order = services.order_mark_ready(order=order, actor=staff)
    if story.state == S.READY_TO_SHIP:
        return order
    order = services.order_ship(
        order=order,
        actor=staff,
        carrier="Maersk",
        tracking_number=f"MSKU{order.pk:07d}",
        shipped_on=clock.now().date(),
        documents=_documents(),
    )
    if story.state == S.SHIPPED:
        return order
    order = services.order_confirm_receipt(order=order, actor=buyer)
    if order.status == S.COMPLETED or story.state == S.DELIVERED:
        return order
    order = services.order_accept_goods(order=order, actor=buyer)
    if story.state == "rated":
        services.order_rate(order=order, actor=buyer, score=5, comment="On time and as agreed.")
    return order


def _set_timer(order: Order, field: str, minutes: int) -> None:
    """Make one running timer fire a few minutes after seeding (the newcomer's demo)."""
    due = clock.now() + timedelta(minutes=minutes)
    values = {field: due}
    if field == "shipment_due_at":
        values["shipment_deadline"] = due
        # A placed order always has a current version (null only inside order_place).
        version_id = cast(int, order.current_version_id)
        ContractVersion.objects.filter(pk=version_id).update(shipment_deadline=due)
    Order.objects.filter(pk=order.pk).update(**values)


def seed(users: dict[str, User]) -> None:
    existing = set(
        Order.objects.filter(purchase_order_number__startswith=PREFIX).values_list(
            "purchase_order_number", flat=True
        )
    )
    suppliers: dict[str, Supplier] = {}
    for key in ("supplier", "supplier2"):
        staff = users.get(key)
        # Without that user (or its organisation) there is no supplier to find.
        supplier = (
            Supplier.objects.filter(organisation_id=staff.organisation_id).first()
            if staff is not None and staff.organisation_id is not None
            else None
        )
        if supplier is not None:
            suppliers[key] = supplier
    for story in STORIES:
        if f"{PREFIX}{story.key}" in existing or story.supplier not in suppliers:
            continue
        order = _play(story, users[story.buyer], suppliers[story.supplier], users[story.supplier])
        if story.timer:
            _set_timer(order, *story.timer)
    # A short buyer-supplier conversation on a few of these orders.
    from orders.conversation.demo import seed as seed_conversations

    seed_conversations()
    # A pre-shipment inspection waiting for the demo inspector's report.
    from orders.inspection.demo import seed as seed_inspection

    seed_inspection(users)
