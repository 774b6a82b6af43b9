"""Receipt, acceptance, completion (releasing the money held), rating."""

from django.conf import settings
from django.db import transaction

from accounts.models import User
from orders.models import Order, OrderRating, OrderStatus, Party
from orders.parties import order_buyers, order_supplier_staff
from orders.services._engine import (
    order_check,
    order_lock,
    order_money_key,
    order_move,
    order_release_all,
    order_supplier_metrics_recompute,
    order_tell,
)
from orders.transitions import LIFECYCLE, Transition
from tradeassure.core import clock
from tradeassure.core.errors import ValidationFailed
from tradeassure.core.moments import moment_token
from tradeassure.core.money import format_money

S = OrderStatus


@transaction.atomic
def order_confirm_receipt(*, order: Order, actor: User, note: str = "") -> Order:
    """The buyer has the goods. Post-delivery: the claim window starts. Pre-shipment: done."""
    order = order_lock(order)
    row, party = order_check(order, "confirm_receipt", actor)
    _receive(order, row, party=party, actor=actor, note=note)
    return order


@transaction.atomic
def order_auto_confirm_receipt(*, order: Order) -> bool:
    """System: the receipt window ended without confirmation. False if nothing was due."""
    order = order_lock(order)
    if (
        order.status != S.SHIPPED
        or order.receipt_due_at is None
        or order.receipt_due_at > clock.now()
    ):
        return False
    row = LIFECYCLE.check(order, "auto_confirm_receipt", Party.SYSTEM)
    _receive(order, row, party=Party.SYSTEM, actor=None, note="Receipt window ended.")
    return True


def _receive(order: Order, row: Transition, *, party: str, actor: User | None, note: str) -> None:
    now = clock.now()
    order.delivered_at = now
    order.receipt_due_at = None
    if row.target == S.DELIVERED:
        order.completion_due_at = now + settings.TRADE_ASSURANCE["POST_DELIVERY_CLAIM_WINDOW"]
        order_move(order, row, party=party, actor=actor, note=note, topic="order.delivered")
        order_tell(
            order,
            order_buyers(order),
            "received — accept the goods or open a dispute",
            "Check the goods against the contract. Accept them to release the payment, or open a "
            f"dispute by {moment_token(order.completion_due_at)}; then the payment is released "
            "automatically.",
        )
        order_tell(
            order, order_supplier_staff(order), "the buyer has the goods (claim window open)"
        )
    else:
        order.completed_at = now
        order_move(order, row, party=party, actor=actor, note=note, topic="order.completed")
        order_supplier_metrics_recompute(order)
        order_tell(order, order_buyers(order), "completed — rate your supplier")
        order_tell(order, order_supplier_staff(order), "completed: the buyer has the goods")


@transaction.atomic
def order_extend_receipt_window(*, order: Order, actor: User, note: str = "") -> Order:
    """Either party may move the receipt deadline by 15 days, once each."""
    order = order_lock(order)
    row, party = order_check(order, "extend_receipt_window", actor)
    order.receipt_due_at = (order.receipt_due_at or clock.now()) + settings.TRADE_ASSURANCE[
        "RECEIPT_EXTENSION"
    ]
    if party == Party.BUYER:
        order.receipt_extended_by_buyer = True
    else:
        order.receipt_extended_by_supplier = True
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"receipt_due_at": order.receipt_due_at.isoformat()},
        topic="order.receipt_window_extended",
    )
    other = order_supplier_staff(order) if party == Party.BUYER else order_buyers(order)
    order_tell(
        order, other, f"receipt window extended to {moment_token(order.receipt_due_at)}", note
    )
    return order


@transaction.atomic
def order_accept_goods(*, order: Order, actor: User, note: str = "") -> Order:
    """The buyer accepts the goods (post-delivery): the order completes and funds are released."""
    order = order_lock(order, escrow_first=True)
    row, party = order_check(order, "accept_goods", actor)
    _complete(order, row, party=party, actor=actor, note=note)
    return order


@transaction.atomic
def order_complete_after_window(*, order: Order) -> bool:
    """System: the post-delivery window closed with no dispute. False if nothing was due."""
    order = order_lock(order, escrow_first=True)
    if (
        order.status != S.DELIVERED
        or order.completion_due_at is None
        or order.completion_due_at > clock.now()
    ):
        return False
    row = LIFECYCLE.check(order, "complete_after_window", Party.SYSTEM)
    _complete(order, row, party=Party.SYSTEM, actor=None, note="Claim window ended.")
    return True


def _complete(order: Order, row: Transition, *, party: str, actor: User | None, note: str) -> None:
    released = order_release_all(order, key=order_money_key(order, "release", "completion"))
    order.completed_at = clock.now()
    order.completion_due_at = None
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"released": str(released)},
        topic="order.completed",
    )
    order_supplier_metrics_recompute(order)
    order_tell(
        order,
        order_supplier_staff(order),
        "completed — funds released",
        f"{format_money(released, order.currency)} released (the fee is deducted on release).",
    )
    order_tell(order, order_buyers(order), "completed — rate your supplier")


@transaction.atomic
def order_rate(*, order: Order, actor: User, score: int, comment: str = "") -> OrderRating:
    """The buyer rates a completed order 1 to 5 (feeds the supplier's metrics)."""
    order = order_lock(order)
    row, party = order_check(order, "rate", actor)
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationFailed(
            "Rate from 1 to 5 stars.", fields={"score": ["Rate from 1 to 5 stars."]}
        )
    rating = OrderRating.objects.create(
        order=order, score=score, comment=comment, rated_by=actor, created_at=clock.now()
    )
    order.rating_score = score
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=comment,
        data={"score": score},
        topic="order.rated",
    )
    order_supplier_metrics_recompute(order)
    order_tell(order, order_supplier_staff(order), f"the buyer rated this order {score}/5", comment)
    return rating
