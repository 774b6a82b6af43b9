"""Payments: what the buyer owes, starting a payment, and money arriving (the capture hook)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.team import Capability, team_require
from orders.models import Order, OrderEvent, OrderStatus, Party
from orders.parties import order_buyers, order_supplier_staff, party_of
from orders.services._engine import (
    order_check,
    order_contract,
    order_lock,
    order_money_key,
    order_move,
    order_record,
    order_refund,
    order_tell,
)
from orders.transitions import LIFECYCLE
from payments.references import EscrowReference
from payments.selectors import escrow_summary
from payments.services import escrow_freeze, escrow_unfreeze, payment_start
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition, NotAllowed
from tradeassure.core.moments import moment_token
from tradeassure.core.money import format_money

S = OrderStatus


PAYMENT_STEPS = {
    # purpose: (status it is due in, amount field, transition applied on capture)
    "initial": (S.AWAITING_PAYMENT, "initial_payment_amount", "initial_payment_captured"),
    "balance": (S.AWAITING_BALANCE, "balance_amount", "balance_payment_captured"),
}


def order_payment_due(order: Order) -> tuple[str, Decimal] | None:
    """The payment the buyer owes now, as (purpose, amount), or None."""
    for purpose, (status, amount_field, _action) in PAYMENT_STEPS.items():
        if order.status == status:
            return purpose, getattr(order, amount_field)
    return None


def order_payment_start(*, order: Order, actor: User, method: str, return_url: str = "") -> Any:
    """Start the payment the buyer owes now (initial or balance); returns the payments' Payment.

    Idempotent per order, purpose, contract version and method: pressing "Pay" twice opens the
    same payment. `payment_start` locks the escrow, so it is locked before the order.
    """
    with transaction.atomic():
        order = order_lock(order, escrow_first=True)
        party = party_of(order=order, user=actor)
        if party != Party.BUYER:
            raise NotAllowed("Only the buyer pays for an order.", code="not_allowed")
        team_require(actor, Capability.PAY)
        due = order_payment_due(order)
        if due is None:
            raise InvalidTransition(
                f"Nothing is due while the order is {LIFECYCLE.status_label(order.status).lower()}.",
                code="invalid_transition",
            )
        purpose, amount = due
        return payment_start(
            escrow_reference=order.escrow_reference,
            purpose=purpose,
            amount=amount,
            currency=order.currency,
            method=method,
            payer_organisation=order.buyer_organisation,
            idempotency_key=order_money_key(
                order, "pay", purpose, f"v{order_contract(order).number}", method
            ),
            return_url=return_url or order.get_absolute_url(),
        )


def order_payment_captured(*, payment: Any) -> None:
    """PAYMENT_CAPTURED_HOOKS entry: money arrived for an order's escrow.

    Runs inside the payments' capture transaction and never raises for money that has arrived:
    if the order is waiting for exactly this payment it moves on; otherwise the money goes back
    to the buyer (refund) and the timeline says why. Called twice for one payment: no effect.
    The capture holds the escrow lock already, so only the order is locked here.
    """
    reference = str(getattr(payment, "escrow_reference", "") or payment.escrow.reference)
    purpose = getattr(payment, "purpose", "")
    order_id = EscrowReference.parse(reference).order_id
    if order_id is None or purpose not in PAYMENT_STEPS:
        return
    with transaction.atomic():
        order = Order.objects.filter(pk=order_id).first()
        if order is None:
            return
        order = order_lock(order)
        if OrderEvent.objects.filter(order=order, data__payment_id=payment.pk).exists():
            return
        status, amount_field, action = PAYMENT_STEPS[purpose]
        matches = (
            payment.amount == getattr(order, amount_field) and payment.currency == order.currency
        )
        data = {
            "payment_id": payment.pk,
            "purpose": purpose,
            "amount": str(payment.amount),
            "currency": payment.currency,
        }
        if matches and order.status == status:
            row = LIFECYCLE.rows_from(action, order.status)[0]
            _apply_capture(order, purpose)
            order_move(
                order, row, party=Party.SYSTEM, actor=None, data=data, topic=f"order.{action}"
            )
            _tell_captured(order, purpose)
            return
        if matches and order.status == S.DISPUTED and order.status_before_dispute == status:
            # Money that was due arrived while a dispute is open: take it, and resume the
            # order after the dispute as if it had arrived before.
            row = LIFECYCLE.rows_from(action, status)[0]
            _apply_capture(order, purpose)
            order.paused_timers.pop("payment_due_at", None)
            order.status_before_dispute = row.target
            order.save()
            order_record(
                order,
                action=action,
                party=Party.SYSTEM,
                actor=None,
                note="Payment received while the dispute is open.",
                data=data,
            )
            return
        _return_payment(order, payment, data)


def _apply_capture(order: Order, purpose: str) -> None:
    now = clock.now()
    order.payment_due_at = None
    if purpose == "initial":
        order.initial_paid_at = now
    else:
        order.balance_paid_at = now
        # The supplier could not ship while it waited for the buyer's balance: the shipment
        # deadline moves by that wait, so a slow balance never makes the supplier late.
        waited = now - (order.balance_requested_at or now)
        if waited > timedelta(0):
            order.shipment_deadline = order.shipment_deadline + waited
            if order.shipment_due_at is not None:
                order.shipment_due_at = order.shipment_due_at + waited


def _tell_captured(order: Order, purpose: str) -> None:
    if purpose == "initial":
        order_tell(
            order,
            order_supplier_staff(order),
            "initial payment held in escrow — start production",
            f"Ship by {moment_token(order.shipment_deadline)}.",
        )
    else:
        order_tell(
            order,
            order_supplier_staff(order),
            "balance paid — ship the goods and record the shipment",
            f"Ship by {moment_token(order.shipment_deadline)} (moved by the time the "
            "balance took to arrive).",
        )


def _return_payment(order: Order, payment: Any, data: dict[str, Any]) -> None:
    """Money the order was not waiting for goes back to the buyer (even while frozen)."""
    reason = "The order was not waiting for this payment (amount or status changed)."
    frozen = escrow_summary(escrow_reference=order.escrow_reference).frozen
    if frozen:
        escrow_unfreeze(escrow_reference=order.escrow_reference)
    order_refund(
        order,
        amount=payment.amount,
        key=order_money_key(order, "refund", "payment", str(payment.pk)),
        reason=reason,
    )
    if frozen:
        escrow_freeze(escrow_reference=order.escrow_reference)
    order_record(
        order,
        action="payment_returned",
        party=Party.SYSTEM,
        actor=None,
        note=f"{format_money(payment.amount, payment.currency)} returned to the buyer. {reason}",
        data=data,
    )
    order_tell(
        order,
        order_buyers(order),
        "a payment was returned to you",
        f"{format_money(payment.amount, payment.currency)}: {reason}",
    )


@transaction.atomic
def order_request_balance(*, order: Order, actor: User, note: str = "") -> Order:
    """Production is done; the supplier asks for the balance before shipping."""
    order = order_lock(order)
    row, party = order_check(order, "request_balance", actor)
    order.balance_requested_at = clock.now()
    # The buyer's due date for the balance (shown on the order); the shipment deadline waits
    # for it (see `_apply_capture`), and the shipment sweep leaves this status alone.
    order.payment_due_at = (
        order.balance_requested_at + settings.TRADE_ASSURANCE["BALANCE_PAYMENT_WINDOW"]
    )
    order_move(order, row, party=party, actor=actor, note=note, topic="order.balance_requested")
    order_tell(
        order,
        order_buyers(order),
        "pay the balance",
        f"{order.supplier} finished production and asks for the balance of "
        f"{format_money(order.balance_amount, order.currency)} by "
        f"{moment_token(order.payment_due_at)}. It is held in escrow too. The shipment "
        "deadline moves by the time the balance takes to arrive.",
    )
    return order


@transaction.atomic
def order_mark_ready(*, order: Order, actor: User, note: str = "") -> Order:
    """Production is done and no balance is due: the goods are ready to ship."""
    order = order_lock(order)
    row, party = order_check(order, "mark_ready", actor)
    order_move(order, row, party=party, actor=actor, note=note, topic="order.ready_to_ship")
    order_tell(order, order_buyers(order), "goods ready to ship", note)
    return order
