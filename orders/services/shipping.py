"""Shipment and the shipment deadline (flagged late by the sweep, extended, or cancelled with a
full refund)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from orders.inspection.holds import inspection_hold_lift, inspections_withdraw
from orders.inspection.models import InspectionResolution
from orders.models import Coverage, Order, Party, Shipment, ShipmentDocument
from orders.parties import order_buyers, order_supplier_staff
from orders.services._engine import (
    order_check,
    order_lock,
    order_money_key,
    order_move,
    order_refund,
    order_release_all,
    order_supplier_metrics_recompute,
    order_tell,
    order_timers_clear,
)
from orders.services.placing import order_open_proposal_close
from orders.transitions import LIFECYCLE, SHIPMENT_CLOCK_RUNS
from payments.selectors import escrow_held
from tradeassure.core import clock
from tradeassure.core.errors import ValidationFailed
from tradeassure.core.moments import moment_token
from tradeassure.core.money import format_money
from tradeassure.core.uploads import DOCUMENT_KINDS, upload_delete, upload_store


@dataclass(frozen=True)
class ShipmentDocumentUpload:
    """One document the supplier uploads with the shipment, before it is stored."""

    kind: str
    file: Any  # an UploadedFile


REQUIRED_SHIPMENT_DOCUMENTS = (
    ShipmentDocument.Kind.COMMERCIAL_INVOICE,
    ShipmentDocument.Kind.BILL_OF_LADING,
    ShipmentDocument.Kind.PACKING_LIST,
)


def order_ship(
    *,
    order: Order,
    actor: User,
    carrier: str,
    tracking_number: str,
    shipped_on: date,
    documents: Sequence[ShipmentDocumentUpload],
    note: str = "",
) -> Order:
    """The supplier records the shipment with its documents; the receipt window starts.

    Pre-shipment coverage releases the held funds to the supplier now.
    """
    errors: dict[str, list[str]] = {}
    if not carrier.strip():
        errors.setdefault("carrier", []).append("Name the carrier.")
    if not tracking_number.strip():
        errors.setdefault("tracking_number", []).append("Give the tracking number.")
    today = clock.now().date()
    if shipped_on > today:
        errors.setdefault("shipped_on", []).append("The ship date cannot be in the future.")
    kinds = {document.kind for document in documents}
    for kind in REQUIRED_SHIPMENT_DOCUMENTS:
        if kind not in kinds:
            errors.setdefault(kind, []).append(
                f"Upload the {ShipmentDocument.Kind(kind).label.lower()}."
            )
    if errors:
        raise ValidationFailed("The shipment is not complete.", fields=errors)
    stored = []
    try:
        with transaction.atomic():
            order = order_lock(order, escrow_first=True)
            row, party = order_check(order, "ship", actor)
            if order.confirmed_at and shipped_on < order.confirmed_at.date():
                raise ValidationFailed(
                    "The ship date is before the order was confirmed.",
                    fields={"shipped_on": ["The ship date is before the order was confirmed."]},
                )
            previous = order.shipment  # set when this ships a replacement agreed in a dispute
            if previous is not None and shipped_on < previous.shipped_on:
                message = "The replacement cannot have shipped before the first shipment."
                raise ValidationFailed(message, fields={"shipped_on": [message]})
            for document in documents:
                try:
                    upload = upload_store(
                        file=document.file,
                        folder=f"orders/{order.pk}/shipment",
                        allowed_kinds=DOCUMENT_KINDS,
                    )
                except ValidationFailed as error:
                    raise ValidationFailed(
                        error.message, code=error.code, fields={document.kind: [error.message]}
                    ) from error
                stored.append((document.kind, upload))
            now = clock.now()
            shipment = Shipment.objects.create(
                order=order,
                replaces=previous,
                carrier=carrier.strip(),
                tracking_number=tracking_number.strip(),
                shipped_on=shipped_on,
                note=note,
                recorded_by=actor,
                recorded_at=now,
            )
            ShipmentDocument.objects.bulk_create(
                ShipmentDocument(
                    shipment=shipment,
                    kind=kind,
                    stored_name=upload.name,
                    original_name=upload.original_name,
                    content_type=upload.content_type,
                    size=upload.size,
                    uploaded_at=now,
                )
                for kind, upload in stored
            )
            order.shipped_at = now
            order.shipment_due_at = None
            order.receipt_due_at = now + settings.TRADE_ASSURANCE["RECEIPT_CONFIRMATION_WINDOW"]
            inspections_withdraw(order, why="the goods shipped before the inspection.")
            released = Decimal(0)
            if order.coverage == Coverage.PRE_SHIPMENT:
                released = order_release_all(
                    order, key=order_money_key(order, "release", "shipment")
                )
            order_move(
                order,
                row,
                party=party,
                actor=actor,
                note=note,
                data={
                    "carrier": shipment.carrier,
                    "tracking_number": shipment.tracking_number,
                    "shipped_on": shipped_on.isoformat(),
                    "late": order.shipped_at > order.shipment_deadline,
                    "released": str(released),
                },
                topic="order.shipped",
            )
            order_tell(
                order,
                order_buyers(order),
                "shipped — confirm receipt when the goods arrive",
                f"{shipment.carrier}, tracking number {shipment.tracking_number}. Confirm receipt "
                f"by {moment_token(order.receipt_due_at)}; after that receipt is confirmed automatically.",
            )
    except BaseException:
        for _kind, upload in stored:
            upload_delete(name=upload.name)
        raise
    return order


@transaction.atomic
def order_flag_late(*, order: Order) -> bool:
    """System: the shipment deadline passed unshipped. Returns False if nothing was due."""
    order = order_lock(order)
    if (
        order.status not in SHIPMENT_CLOCK_RUNS
        or order.shipment_due_at is None
        or order.shipment_due_at > clock.now()
    ):
        return False
    row = LIFECYCLE.check(order, "flag_late", Party.SYSTEM)
    order.is_late = True
    order.late_flagged_at = clock.now()
    order.shipment_due_at = None
    order_move(order, row, party=Party.SYSTEM, actor=None, topic="order.shipment_late")
    order_tell(
        order,
        order_buyers(order),
        "shipment deadline passed — cancel with a full refund or extend",
        "The supplier has not recorded a shipment by the agreed deadline. You may cancel the "
        "order and get your payment back in full, or grant the supplier more time.",
    )
    order_tell(
        order,
        order_supplier_staff(order),
        "shipment deadline passed",
        "The buyer may now cancel with a full refund. Ship and record the shipment, or ask the "
        "buyer for an extension.",
    )
    return True


@transaction.atomic
def order_extend_shipment_deadline(
    *, order: Order, actor: User, new_deadline: datetime, note: str = ""
) -> Order:
    """The buyer grants the supplier more time to ship (clears the late flag)."""
    order = order_lock(order)
    row, party = order_check(order, "extend_shipment_deadline", actor)
    now = clock.now()
    if new_deadline <= max(now, order.shipment_deadline):
        raise ValidationFailed(
            "The new deadline must be later than the current one and in the future.",
            fields={"new_deadline": ["Choose a later date."]},
        )
    if new_deadline > now + settings.TRADE_ASSURANCE["MAX_SHIPMENT_DEADLINE_AHEAD"]:
        raise ValidationFailed(
            "The new deadline may be at most "
            f"{settings.TRADE_ASSURANCE['MAX_SHIPMENT_DEADLINE_AHEAD'].days} days ahead.",
            fields={"new_deadline": ["Too far ahead."]},
        )
    previous = order.shipment_deadline
    order.shipment_deadline = new_deadline
    order.shipment_due_at = new_deadline
    order.is_late = False
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"previous_deadline": previous.isoformat(), "new_deadline": new_deadline.isoformat()},
        topic="order.shipment_deadline_extended",
    )
    order_tell(
        order,
        order_supplier_staff(order),
        f"shipment deadline extended to {new_deadline:%Y-%m-%d}",
        note,
    )
    return order


@transaction.atomic
def order_cancel_late_with_refund(*, order: Order, actor: User, reason: str = "") -> Order:
    """The buyer cancels a late order and gets every held amount back, without supplier consent."""
    order = order_lock(order, escrow_first=True)
    row, party = order_check(order, "cancel_late_with_refund", actor)
    refunded = order_refund(
        order,
        amount=escrow_held(escrow_reference=order.escrow_reference),
        key=order_money_key(order, "refund", "late_cancellation"),
        reason="Shipment deadline missed; cancelled by the buyer.",
    )
    now = clock.now()
    order.cancelled_at = now
    order.refunded_at = now
    order.cancel_reason = reason or "The supplier missed the shipment deadline."
    order_timers_clear(order)
    order_open_proposal_close(order)
    inspections_withdraw(order, why="the order was cancelled with a full refund.")
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=order.cancel_reason,
        data={"refunded": str(refunded)},
        topic="order.refunded",
    )
    order_tell(
        order,
        order_supplier_staff(order),
        "cancelled by the buyer: shipment deadline missed",
        f"{format_money(refunded, order.currency)} was refunded to the buyer.",
    )
    return order


@transaction.atomic
def order_cancel_after_failed_inspection(*, order: Order, actor: User, reason: str = "") -> Order:
    """The buyer cancels an order whose pre-shipment inspection found the goods not conforming,
    and gets every held amount back without the supplier's consent (the inspection fee was
    already refunded with the report)."""
    order = order_lock(order, escrow_first=True)
    row, party = order_check(order, "cancel_after_failed_inspection", actor)
    refunded = order_refund(
        order,
        amount=escrow_held(escrow_reference=order.escrow_reference),
        key=order_money_key(order, "refund", "failed_inspection"),
        reason="The pre-shipment inspection found the goods not conforming; cancelled by the buyer.",
    )
    now = clock.now()
    order.cancelled_at = now
    order.refunded_at = now
    order.cancel_reason = (
        reason or "The pre-shipment inspection found that the goods do not conform."
    )
    order_timers_clear(order)
    order_open_proposal_close(order)
    inspection_hold_lift(
        order,
        resolution=InspectionResolution.REFUND,
        party=party,
        actor=actor,
        note=order.cancel_reason,
    )
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=order.cancel_reason,
        data={"refunded": str(refunded)},
        topic="order.refunded",
    )
    order_supplier_metrics_recompute(order)
    order_tell(
        order,
        order_supplier_staff(order),
        "cancelled by the buyer: the goods failed the pre-shipment inspection",
        f"{format_money(refunded, order.currency)} was refunded to the buyer.",
    )
    return order
