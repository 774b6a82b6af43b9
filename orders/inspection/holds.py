"""What the order services do to its pre-shipment inspection: lift the shipment block of a
non-conforming one when they record the parties' agreement (a new contract version accepted, a
cancellation with a full refund, a dispute's decision), and withdraw an inspection still to come
when the order ships or ends first. Imports no orders service, so those services may call it.
The caller holds the order's lock (and the escrow's first, if money may move)."""

from accounts.models import User
from orders.inspection.models import (
    InspectionParty,
    InspectionStatus,
    PreshipmentInspection,
)
from orders.inspection.transitions import LIFECYCLE
from orders.models import Order
from payments.services import inspection_fee_return
from tradeassure.core import clock
from tradeassure.platform.events import event_publish


def inspection_blocking(order: Order) -> PreshipmentInspection | None:
    """The order's non-conforming inspection that blocks shipment (locked), if any."""
    if not order.shipment_blocked_by_inspection:
        return None
    return (
        PreshipmentInspection.objects.select_for_update(of=("self",), no_key=True)
        .filter(order=order, status=InspectionStatus.DOES_NOT_CONFORM)
        .first()
    )


def inspection_hold_lift(
    order: Order,
    *,
    resolution: str,
    party: str,
    actor: User | None,
    note: str = "",
    action: str = "resolve",
) -> PreshipmentInspection | None:
    """Record the agreement on the inspection (one timeline row) and let the order ship again.
    Sets `order.shipment_blocked_by_inspection = False` (the caller saves the order). No effect
    when nothing blocks it."""
    inspection = inspection_blocking(order)
    order.shipment_blocked_by_inspection = False
    if inspection is None:
        return None
    row = LIFECYCLE.check(inspection, action, party)
    inspection.resolution = resolution
    inspection.resolution_note = note[:2000]
    inspection.resolved_at = clock.now()
    LIFECYCLE.move(
        inspection,
        row,
        party=party,
        actor=actor,
        note=note[:2000],
        data={"resolution": resolution},
    )
    event_publish(
        topic="order.inspection_resolved",
        subject_type="order",
        subject_id=order.pk,
        audience=[order.buyer_organisation_id, order.supplier.organisation_id],
        payload={
            "order": order.reference,
            "inspection": inspection.pk,
            "resolution": resolution,
            "actor": party,
        },
    )
    return inspection


def inspections_withdraw(order: Order, *, why: str) -> list[int]:
    """The order shipped or ended before its booked inspection took place: cancel it, and give
    a paid fee back to the buyer (idempotent by key). Returns the inspections withdrawn."""
    withdrawn = []
    for inspection in PreshipmentInspection.objects.select_for_update(
        of=("self",), no_key=True
    ).filter(order=order, status__in=(InspectionStatus.AWAITING_FEE, InspectionStatus.SCHEDULED)):
        returned = inspection.status == InspectionStatus.SCHEDULED
        if returned:
            inspection_fee_return(
                escrow_reference=order.escrow_reference,
                amount=inspection.fee_amount,
                idempotency_key=(
                    f"order:{order.pk}:preshipment-inspection:{inspection.pk}:fee-return"
                ),
                reason=f"No inspection took place: {why}",
            )
            inspection.fee_settled_at = clock.now()
            inspection.fee_refunded = True
        row = LIFECYCLE.check(inspection, "withdraw", InspectionParty.SYSTEM)
        inspection.fee_due_at = None
        LIFECYCLE.move(
            inspection,
            row,
            party=InspectionParty.SYSTEM,
            actor=None,
            note=why,
            data={"fee_returned": returned},
        )
        event_publish(
            topic="order.inspection_cancelled",
            subject_type="order",
            subject_id=order.pk,
            audience=[
                order.buyer_organisation_id,
                order.supplier.organisation_id,
                inspection.organisation_id,
            ],
            payload={
                "order": order.reference,
                "inspection": inspection.pk,
                "status": inspection.status,
                "fee_returned": returned,
            },
        )
        withdrawn.append(inspection.pk)
    return withdrawn
