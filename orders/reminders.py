"""The order deadlines that act by themselves, as reminder sources (tradeassure.platform.reminders).

Each `ReminderSource` names the deadline column, the statuses in which it still applies, who
must act (through `orders.parties`, so a change to who acts for an organisation flows through)
and what they are told; the platform's sweep does the rest. To remind before another deadline,
add one entry here (or in the app that owns the deadline, listed on its AppConfig's
`reminder_sources`)."""

from collections.abc import Callable, Sequence

from django.db.models import F, QuerySet

from accounts.models import User
from orders.inspection.models import InspectionStatus, PreshipmentInspection
from orders.models import Order, OrderStatus, Party
from orders.parties import orders_people
from orders.services.sweeps import order_url
from orders.transitions import SHIPMENT_CLOCK_RUNS
from tradeassure.platform.reminders import ReminderSource

S = OrderStatus


def orders_in(*statuses: str) -> Callable[[], QuerySet[Order]]:
    """The orders in `statuses`, knowing their supplier's organisation (for `orders_people`)."""

    def rows() -> QuerySet[Order]:
        return Order.objects.filter(status__in=statuses).annotate(
            supplier_organisation_id=F("supplier__organisation_id")
        )

    return rows


def buyers(orders: Sequence[Order]) -> dict[int, list[User]]:
    return {pk: people[0] for pk, people in orders_people(orders).items()}


def supplier_staff(orders: Sequence[Order]) -> dict[int, list[User]]:
    return {pk: people[1] for pk, people in orders_people(orders).items()}


def whoever_must_agree(orders: Sequence[Order]) -> dict[int, list[User]]:
    """The supplier confirms a placed order; when the supplier has proposed changes, the buyer
    is the one who must answer."""
    people = orders_people(orders)
    return {
        order.pk: people[order.pk][0]
        if order.proposal_pending_from == Party.SUPPLIER
        else people[order.pk][1]
        for order in orders
    }


def unpaid_preshipment_fees() -> QuerySet[PreshipmentInspection]:
    """Pre-shipment inspections booked and not yet paid for (the booking lapses at `fee_due_at`)."""
    return (
        PreshipmentInspection.objects.filter(status=InspectionStatus.AWAITING_FEE)
        .select_related("order")
        .annotate(supplier_organisation_id=F("order__supplier__organisation_id"))
    )


def inspection_buyers(inspections: Sequence[PreshipmentInspection]) -> dict[int, list[User]]:
    """The buyers of each inspection's order (the ones who pay its fee)."""
    for inspection in inspections:
        inspection.order.supplier_organisation_id = inspection.supplier_organisation_id  # type: ignore[attr-defined]
    people = orders_people([inspection.order for inspection in inspections])
    return {inspection.pk: people[inspection.order_id][0] for inspection in inspections}


def order_deadline(
    deadline: str,
    due_field: str,
    statuses: Sequence[str],
    *,
    people: Callable[[Sequence[Order]], dict[int, list[User]]],
    title: str,
    body: str,
) -> ReminderSource:
    """A reminder source for an order deadline that applies in `statuses`."""
    return ReminderSource(
        kind="order",
        deadline=deadline,
        due_field=due_field,
        rows=orders_in(*statuses),
        people=people,
        title=title,
        body=body,
        reference=lambda order: order.reference,
        url=lambda order: order_url(order.pk),
    )


REMINDER_SOURCES = [
    order_deadline(
        "confirmation",
        "confirmation_due_at",
        [S.PENDING_CONFIRMATION],
        title="agree the contract by {due}",
        body="The order must be agreed by {due} ({left}); otherwise it is cancelled automatically.",
        people=whoever_must_agree,
    ),
    order_deadline(
        "initial_payment",
        "payment_due_at",
        [S.AWAITING_PAYMENT],
        title="make the initial payment by {due}",
        body="The initial payment is due by {due} ({left}); if it has not arrived by then, "
        "the order is cancelled automatically.",
        people=buyers,
    ),
    order_deadline(
        "balance",
        "payment_due_at",
        [S.AWAITING_BALANCE],
        title="pay the balance by {due}",
        body="The supplier has asked for the balance; it is due by {due} ({left}). The goods "
        "ship once it is paid.",
        people=buyers,
    ),
    order_deadline(
        "shipment",
        "shipment_due_at",
        SHIPMENT_CLOCK_RUNS,
        title="ship by {due}",
        body="Record the shipment by {due} ({left}). After that the order is flagged late "
        "and the buyer may cancel it with a full refund.",
        people=supplier_staff,
    ),
    order_deadline(
        "receipt",
        "receipt_due_at",
        [S.SHIPPED],
        title="confirm receipt by {due}",
        body="Confirm receipt of the goods, or open a dispute, by {due} ({left}); after that "
        "receipt is confirmed automatically.",
        people=buyers,
    ),
    order_deadline(
        "claim_window",
        "completion_due_at",
        [S.DELIVERED],
        title="the claim window closes {due}",
        body="Accept the goods or open a dispute by {due} ({left}); after that the payment is "
        "released to the supplier automatically.",
        people=buyers,
    ),
    ReminderSource(
        kind="preshipment_inspection",
        deadline="fee",
        due_field="fee_due_at",
        rows=unpaid_preshipment_fees,
        people=inspection_buyers,
        title="pay the pre-shipment inspection fee by {due}",
        body="Pay the inspection fee by {due} ({left}); if it is not paid by then, the booking "
        "lapses and the inspection does not take place.",
        reference=lambda inspection: inspection.order.reference,
        url=lambda inspection: order_url(inspection.order_id),
    ),
]
