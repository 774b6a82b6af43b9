"""What every orders service does around a transition: lock, move (through the kernel lifecycle),
publish, tell, feed the supplier's record; and money through the payments layer.

The lock order is the one every money service in the project uses: the order's escrow row,
then the order row, then (in the disputes app) the dispute row. The payments capture hook holds
the escrow when it calls `order_payment_captured`, so a service that will touch the escrow
(open, pay, release, refund, freeze) locks it first with `order_lock(..., escrow_first=True)`;
one that never touches it takes the order lock alone. No path takes them the other way round,
so none waits on another in a cycle. Private to `orders.services`.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, cast

from accounts.models import User
from orders.models import ContractVersion, Order, OrderEvent, OrderStatus
from orders.parties import party_of, party_require
from orders.transitions import LIFECYCLE, Transition
from payments.selectors import escrow_held
from payments.services import escrow_lock_for_order, escrow_refund, escrow_release
from suppliers.services import supplier_metrics_recompute, supplier_order_record_sync
from tradeassure.platform.events import event_publish, notify

S = OrderStatus

DUE_FIELDS = (
    "confirmation_due_at",
    "payment_due_at",
    "shipment_due_at",
    "receipt_due_at",
    "completion_due_at",
)


def order_lock(order: Order | int, *, escrow_first: bool = False) -> Order:
    """Lock the order row (after its escrow's, with `escrow_first`) and read it fresh."""
    pk = order if isinstance(order, int) else order.pk
    if escrow_first:
        escrow_lock_for_order(order_id=pk)
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("supplier__organisation", "buyer_organisation", "current_version")
        .get(pk=pk)
    )


def order_check(order: Order, action: str, actor: User | None) -> tuple[Transition, str]:
    """The row `actor` may take now and the party they act as, or the refusal: the member's
    team role first (`role_not_allowed`), then the lifecycle's."""
    party = party_of(order=order, user=actor)
    party_require(user=actor, party=party, action=action)
    return LIFECYCLE.check_as(order, action, party)


def order_contract(order: Order) -> ContractVersion:
    """The contract version in force. `current_version` is nullable only because the order row
    is written before its version 1; `order_place` adopts it in the same transaction, so every
    order a service sees has one."""
    return cast(ContractVersion, order.current_version)


def order_tell(order: Order, users: Iterable[User], title: str, body: str = "") -> None:
    """Notify people about this order, titled with its reference and linking to its page."""
    notify(
        users=users, title=f"{order.reference}: {title}", body=body, url=order.get_absolute_url()
    )


def order_move(
    order: Order,
    row: Transition,
    *,
    party: str,
    actor: User | None,
    note: str = "",
    data: dict[str, Any] | None = None,
    topic: str | None = None,
    to_status: str | None = None,
    sync_record: bool = True,
) -> OrderEvent:
    """Apply a checked transition to a locked order (status and timeline row, by the lifecycle),
    then publish the domain event to both organisations and feed the supplier's record (unless
    the caller records it itself: `order_place`)."""
    event = LIFECYCLE.move(
        order, row, party=party, actor=actor, note=note, data=data, to_status=to_status
    )
    order_event_publish(order, row, event, party=party, data=data, topic=topic)
    if sync_record:
        order_supplier_record_sync(order=order)
    return event


def order_event_publish(
    order: Order,
    row: Transition,
    event: OrderEvent,
    *,
    party: str,
    data: dict[str, Any] | None = None,
    topic: str | None = None,
) -> None:
    """The domain event of a transition whose timeline row is `event`, to both organisations."""
    event_publish(
        topic=topic or f"order.{row.action}",
        subject_type="order",
        subject_id=order.pk,
        audience=[order.buyer_organisation_id, order.supplier.organisation_id],
        payload={
            "order": order.reference,
            "action": row.action,
            "from_status": event.from_status,
            "to_status": event.to_status,
            "actor": party,
            **(data or {}),
        },
    )


def order_record(
    order: Order,
    *,
    action: str,
    party: str,
    actor: User | None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    """A fact on the timeline that is not a status move (e.g. money returned)."""
    return LIFECYCLE.record(order, action=action, party=party, actor=actor, note=note, data=data)


def order_supplier_record_sync(*, order: Order) -> None:
    """Feed the order's facts to the supplier's record (metrics, exposure, limit)."""
    final: dict[str, str] = {
        S.COMPLETED: "completed",
        S.CANCELLED: "cancelled",
        S.REFUNDED: "refunded",
    }
    record_status = final.get(order.status, "open")
    supplier_order_record_sync(
        supplier=order.supplier,
        order_reference=order.escrow_reference,
        amount=order.total,
        currency=order.currency,
        status=record_status,
        placed_at=order.placed_at,
        confirmed_at=order.confirmed_at,
        shipment_deadline=order.shipment_deadline,
        shipped_at=order.shipped_at,
        completed_at=order.completed_at,
        disputed=order.ever_disputed,
        dispute_lost=order.dispute_lost,
        rating=order.rating_score,
    )


def order_supplier_metrics_recompute(order: Order) -> None:
    """The order reached an end (or was rated): the supplier's metrics change."""
    supplier_metrics_recompute(supplier=order.supplier)


def order_timers_clear(order: Order) -> None:
    """Stop every deadline of this order (nothing left for a sweep to do)."""
    for name in DUE_FIELDS:
        setattr(order, name, None)


# --- money, through the payments layer (escrow locked first by the caller) ------------------


def order_money_key(order: Order, *parts: str) -> str:
    """An idempotency key for a money move of this order ("order:<id>:release:completion"), so
    a retried call never moves money twice. Its format is stored with the ledger: keep it."""
    return ":".join(["order", str(order.pk), *parts])


def order_release_all(order: Order, *, key: str) -> Decimal:
    """Release everything held to the supplier; returns the amount released."""
    held = escrow_held(escrow_reference=order.escrow_reference)
    if held > 0:
        escrow_release(escrow_reference=order.escrow_reference, amount=held, idempotency_key=key)
    return held


def order_refund(order: Order, *, amount: Decimal, key: str, reason: str) -> Decimal:
    """Refund this amount to the buyer (nothing for zero); returns the amount refunded."""
    if amount > 0:
        escrow_refund(
            escrow_reference=order.escrow_reference,
            amount=amount,
            idempotency_key=key,
            reason=reason,
        )
    return amount
