"""Lifting the shipment block of a non-conforming pre-shipment inspection, from the order
services that record the parties' agreement (a new contract version accepted, a cancellation with
a full refund, a dispute's decision). Imports no service, so those services may call it.
The caller holds the order's lock (and the escrow's, if it moves money)."""

from accounts.models import User
from orders.inspection.models import InspectionStatus, PreshipmentInspection
from orders.inspection.transitions import LIFECYCLE
from orders.models import Order
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
