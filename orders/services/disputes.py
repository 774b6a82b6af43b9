"""The disputes hand-off: the disputes app calls these inside its own transaction.

It takes the locks in the project's order: `order_lock_for_update` (the order's escrow, then the
order), then its dispute row, then these services (which re-take the same locks, already held).
`DisputeOutcome` (from `orders.terms`) is re-exported here with the services that use it."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.models import User
from orders.error_codes import OrderErrorCode
from orders.inspection.holds import inspection_hold_lift, inspections_withdraw
from orders.inspection.models import InspectionResolution
from orders.models import ContractVersion, Order, OrderStatus
from orders.parties import order_buyers, order_supplier_staff
from orders.services._engine import (
    DUE_FIELDS,
    order_check,
    order_contract,
    order_lock,
    order_money_key,
    order_move,
    order_refund,
    order_release_all,
    order_supplier_metrics_recompute,
    order_tell,
    order_timers_clear,
)
from orders.services.placing import (
    contract_version_adopt,
    contract_version_create,
    order_open_proposal_close,
)
from orders.terms import ContractTerms, DisputeOutcome, contract_terms_validate
from orders.transitions import BACK_TO_PRIOR, LIFECYCLE, PAID_NOT_SHIPPED
from payments.selectors import escrow_held
from payments.services import escrow_freeze, escrow_unfreeze
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, Unprocessable, ValidationFailed
from tradeassure.core.moments import moment_token
from tradeassure.core.money import format_money, is_exact

S = OrderStatus

__all__ = [
    "DisputeOutcome",
    "order_contract_amend_by_dispute",
    "order_dispute_opened",
    "order_dispute_resolved",
    "order_freeze_for_dispute",
    "order_lock_for_update",
]


def order_lock_for_update(*, order: Order | int, escrow_first: bool = True) -> Order:
    """For callers (disputes) that lock an order before calling a service that moves money:
    take the escrow lock first, like every orders service does, so no path deadlocks with the
    payments capture hook (which holds the escrow and then locks the order)."""
    return order_lock(order, escrow_first=escrow_first)


@transaction.atomic
def order_dispute_opened(*, order: Order, actor: User | None, note: str = "") -> Order:
    """A dispute was opened: status → disputed, timers paused, escrow frozen.

    The status before is remembered (`status_before_dispute`); each running deadline is stored
    as the time it had left (`paused_timers`) and cleared, so no sweep fires while disputed.
    """
    return order_dispute_opened_locked(
        order=order_lock(order, escrow_first=True), actor=actor, note=note
    )


def order_dispute_opened_locked(*, order: Order, actor: User | None, note: str = "") -> Order:
    """`order_dispute_opened` for a caller inside its own transaction that already holds the
    escrow and order locks and passes the order it read under them (`dispute_open`): neither
    lock is taken twice, and no savepoint of its own."""
    row, party = order_check(order, "dispute_opened", actor)
    now = clock.now()
    paused = {}
    for name in DUE_FIELDS:
        due = getattr(order, name)
        if due is not None:
            paused[name] = max(0, int((due - now).total_seconds()))
            setattr(order, name, None)
    order.paused_timers = paused
    order.status_before_dispute = order.status
    order.disputed_at = now
    order.ever_disputed = True
    escrow_freeze(escrow_reference=order.escrow_reference)
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"paused_timers": paused},
        topic="order.disputed",
    )
    return order


order_freeze_for_dispute = order_dispute_opened  # the name BRIEF.md announced


@transaction.atomic
def order_dispute_resolved(
    *,
    order: Order,
    actor: User | None,
    outcome: str,
    dispute_reference: str,
    refund_amount: Decimal = Decimal(0),
    supplier_at_fault: bool = False,
    note: str = "",
    tell_parties: bool = True,
) -> Order:
    """Execute a dispute's outcome on the order, in the caller's transaction.

    `tell_parties=False` when the caller sends the parties its own notice of the outcome (a
    dispute decision or settlement), so each person gets one notice, not two.

    Unfreezes the escrow, moves the money (keys "order:<id>:dispute:<ref>:refund|release"),
    and sets the status: resume/new_agreement → the status before the dispute, with paused
    timers resumed (due = now + time that was left); replacement → ready_to_ship with the money
    still held and the (amended) shipment deadline running, the receipt and claim windows to
    restart when the replacement ships; release/partial_refund → completed; full_refund →
    refunded. `refund_amount` applies to partial_refund, new_agreement and replacement.
    """
    if outcome not in DisputeOutcome.ALL:
        raise ValidationFailed(
            f"Unknown dispute outcome {outcome!r}.", code=OrderErrorCode.UNKNOWN_OUTCOME
        )
    order = order_lock(order, escrow_first=True)
    action = {
        DisputeOutcome.RESUME: "dispute_resolved_resume",
        DisputeOutcome.NEW_AGREEMENT: "dispute_resolved_resume",
        DisputeOutcome.REPLACEMENT: "dispute_resolved_replacement",
        DisputeOutcome.RELEASE: "dispute_resolved_complete",
        DisputeOutcome.PARTIAL_REFUND: "dispute_resolved_complete",
        DisputeOutcome.FULL_REFUND: "dispute_resolved_refund",
    }[outcome]
    row, party = order_check(order, action, actor)
    refund_amount = Decimal(refund_amount or 0)
    if refund_amount < 0 or not is_exact(refund_amount, order.currency):
        raise ValidationFailed(
            "The refund amount is not a valid amount.", code=OrderErrorCode.BAD_AMOUNT
        )
    if outcome == DisputeOutcome.REPLACEMENT and order.shipment_deadline <= clock.now():
        raise Unprocessable(
            "A replacement needs a shipment deadline in the future: agree the date by which "
            "the supplier ships it.",
            code=OrderErrorCode.REPLACEMENT_DEADLINE_MISSING,
        )
    escrow_unfreeze(escrow_reference=order.escrow_reference)
    held = escrow_held(escrow_reference=order.escrow_reference)
    refunded = released = Decimal(0)
    reason = f"Dispute {dispute_reference}: {outcome.replace('_', ' ')}"
    if outcome == DisputeOutcome.FULL_REFUND:
        if held <= 0:
            raise Unprocessable(
                "Nothing is held in escrow for this order, so it cannot be refunded in full.",
                code=OrderErrorCode.NOTHING_HELD,
            )
        refunded = order_refund(
            order,
            amount=held,
            key=order_money_key(order, "dispute", dispute_reference, "refund"),
            reason=reason,
        )
    elif outcome in (
        DisputeOutcome.PARTIAL_REFUND,
        DisputeOutcome.NEW_AGREEMENT,
        DisputeOutcome.REPLACEMENT,
    ):
        if refund_amount > held:
            raise Conflict(
                f"Only {format_money(held, order.currency)} is held; cannot refund "
                f"{format_money(refund_amount, order.currency)}.",
                code=OrderErrorCode.INSUFFICIENT_ESCROW,
            )
        refunded = order_refund(
            order,
            amount=refund_amount,
            key=order_money_key(order, "dispute", dispute_reference, "refund"),
            reason=reason,
        )
    if outcome in (DisputeOutcome.RELEASE, DisputeOutcome.PARTIAL_REFUND):
        released = order_release_all(
            order, key=order_money_key(order, "dispute", dispute_reference, "release")
        )

    now = clock.now()
    target = LIFECYCLE.target_for(order, row)
    replaced: dict[str, Any] = {}
    is_replacement = outcome == DisputeOutcome.REPLACEMENT
    if is_replacement:
        # The goods shipped are to be replaced: the old windows end (they restart when the
        # replacement ships) and the shipment deadline of the new agreement runs.
        previous = order.shipment
        if previous is not None:
            replaced = {
                "id": previous.pk,
                "carrier": previous.carrier,
                "tracking_number": previous.tracking_number,
                "shipped_on": previous.shipped_on.isoformat(),
            }
        order_timers_clear(order)
        order.shipment_due_at = order.shipment_deadline
        order.is_late = False
        order.late_flagged_at = None
        order.shipped_at = None
        order.delivered_at = None
        order.receipt_extended_by_buyer = False
        order.receipt_extended_by_supplier = False
    elif row.target == BACK_TO_PRIOR:
        for name, seconds in (order.paused_timers or {}).items():
            due = now + timedelta(seconds=seconds)
            setattr(order, name, due)
            if name == "shipment_due_at":
                order.shipment_deadline = due
    else:
        order_timers_clear(order)
        if target == S.COMPLETED:
            order.completed_at = now
        else:
            order.refunded_at = now
            order.cancelled_at = now
            order.cancel_reason = reason
    order.paused_timers = {}
    order.status_before_dispute = ""
    order.dispute_lost = order.dispute_lost or supplier_at_fault
    if target in (S.COMPLETED, S.REFUNDED):
        inspections_withdraw(order, why=f"dispute {dispute_reference} ended the order.")
    if outcome != DisputeOutcome.RESUME:
        # A decision or settlement is the parties' agreement after a failed pre-shipment
        # inspection (a claim withdrawn or closed without one leaves the shipment blocked).
        inspection_hold_lift(
            order,
            resolution=InspectionResolution.DISPUTE,
            party=party,
            actor=actor,
            note=f"Dispute {dispute_reference}: {outcome.replace('_', ' ')}.",
        )
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={
            "dispute": dispute_reference,
            "outcome": outcome,
            "refunded": str(refunded),
            "released": str(released),
            "supplier_at_fault": supplier_at_fault,
            **({"replaced_shipment": replaced} if replaced else {}),
        },
        topic="order.dispute_resolved",
        to_status=target,
    )
    if target in (S.COMPLETED, S.REFUNDED):
        order_supplier_metrics_recompute(order)
    if not tell_parties:
        return order
    for users in (order_buyers(order), order_supplier_staff(order)):
        order_tell(
            order,
            users,
            f"dispute resolved — order {LIFECYCLE.status_label(target).lower()}",
            note,
        )
    if is_replacement:
        order_tell(
            order,
            order_supplier_staff(order),
            f"ship the replacement by {moment_token(order.shipment_deadline)}",
            "Record the replacement shipment with its documents on the order page. The payment "
            "stays in escrow until the buyer has the replacement and accepts it.",
        )
    return order


@transaction.atomic
def order_contract_amend_by_dispute(
    *,
    order: Order,
    actor: User | None,
    terms: ContractTerms,
    dispute_reference: str,
    note: str = "",
) -> ContractVersion:
    """A dispute's new agreement becomes the contract in force (money terms may change here).

    Call while the order is disputed, before `order_dispute_resolved(outcome="new_agreement")`.
    The version is accepted at once (both parties agreed in the dispute, or a mediator decided).
    """
    order = order_lock(order)
    row, party = order_check(order, "contract_amended_by_dispute", actor)
    deadline_changed = terms.shipment_deadline != order_contract(order).shipment_deadline
    totals = contract_terms_validate(
        supplier=order.supplier, terms=terms, check_deadline=deadline_changed
    )
    order_open_proposal_close(order)
    version = contract_version_create(
        order=order,
        terms=terms,
        totals=totals,
        state=ContractVersion.State.ACCEPTED,
        party=party,
        actor=actor,
        note=note or f"New agreement in dispute {dispute_reference}",
    )
    previous = order_contract(order).number
    contract_version_adopt(order, version)
    if order.status_before_dispute == S.AWAITING_BALANCE and order.balance_amount == 0:
        # The new agreement leaves no balance to pay: resume ready to ship, not waiting for 0.
        order.status_before_dispute = S.READY_TO_SHIP
        order.balance_paid_at = clock.now()
    if deadline_changed and order.status_before_dispute in PAID_NOT_SHIPPED:
        # The new deadline runs once the dispute ends (like every paused timer).
        order.paused_timers["shipment_due_at"] = max(
            0, int((terms.shipment_deadline - clock.now()).total_seconds())
        )
        order.is_late = False
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={
            "version": version.number,
            "previous_version": previous,
            "dispute": dispute_reference,
        },
        topic="order.contract_amended",
    )
    return version
