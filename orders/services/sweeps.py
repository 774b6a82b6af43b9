"""Deadline sweeps (Celery beat, every 60 s): set-based, idempotent, safe when run twice at once.

Each sweep is a `tradeassure.core.sweeps.BatchSweep`: one transaction per batch claims the due
orders with `SELECT … FOR UPDATE SKIP LOCKED` on the due condition itself (status and deadline
re-checked by the query under the lock, rows someone else holds skipped), checks each against
the lifecycle map, and moves the whole batch with bulk writes: one `UPDATE … WHERE id IN (…) AND
status = <from>` per group of identical changes, one timeline row per order (`bulk_create`), the
domain events and notifications with their outbox rows (`bulk_create`, one dispatcher kick per
batch), one upsert of the suppliers' order records and one Celery message for their metrics.

The post-delivery sweep moves money the same way: its claim locks the orders' escrows and then
the orders (escrow → order, the lock order of every money service, skipping any a person holds),
so a buyer accepting or disputing as the window closes never waits on the sweep in a cycle; the
whole batch's releases are then posted by `payments.services.escrows_release_many` (a constant
number of statements, exactly once per order by its idempotency key, the rule the buyer's
accept goes through one order at a time). A batch that fails rolls back and its orders go one by one
through the per-order service (`order_expire_confirmation`, …), where a failing order is logged
and reported to staff as a SystemAlert.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet

from orders.models import ContractVersion, Order, OrderEvent, OrderStatus, Party
from orders.parties import (
    order_buyers,
    order_supplier_staff,
    orders_people,
    supplier_organisation_id,
)
from orders.services._engine import (
    order_lock,
    order_money_key,
    order_tell,
)
from orders.services.placing import order_cancel_apply
from orders.services.receipt import order_auto_confirm_receipt, order_complete_after_window
from orders.services.shipping import order_flag_late
from orders.transitions import LIFECYCLE, SHIPMENT_CLOCK_RUNS, Transition
from payments.services import EscrowRelease, escrows_lock_for_orders, escrows_release_many
from suppliers.services import (
    OrderRecordFacts,
    supplier_order_records_sync_many,
)
from tradeassure.core import clock
from tradeassure.core.bulk import bulk_insert, update_claimed_in_groups
from tradeassure.core.errors import DomainError
from tradeassure.core.money import format_money
from tradeassure.core.sweeps import BatchSweep, sweep_batches
from tradeassure.platform.events import EventSpec, NoticeSpec, events_publish_many, notify_many
from tradeassure.platform.models import SystemAlert

S = OrderStatus


def _alert(name: str) -> Callable[[int, Exception], None]:
    def alert(order_id: int, error: Exception) -> None:
        message = error.message if isinstance(error, DomainError) else repr(error)
        SystemAlert.objects.create(
            source=f"orders.{name}",
            message=f"Order {order_id}: {message}"[:2000],
            created_at=clock.now(),
        )

    return alert


# --- the per-order services (the one-by-one path of a failed batch) -------------------------


def _expire(*, order: Order, action: str, due_field: str, status: str, reason: str) -> bool:
    """Cancel an order whose window ended with nothing agreed or paid (no money is held)."""
    order = order_lock(order)
    due = getattr(order, due_field)
    if order.status != status or due is None or due > clock.now():
        return False
    row = LIFECYCLE.check(order, action, Party.SYSTEM)
    order_cancel_apply(order, row, party=Party.SYSTEM, actor=None, reason=reason)
    for users in (order_buyers(order), order_supplier_staff(order)):
        order_tell(order, users, "cancelled automatically", reason)
    return True


CONFIRMATION_EXPIRED = "The contract was not agreed within the confirmation window."
PAYMENT_EXPIRED = "The initial payment was not made within the payment window."


@transaction.atomic
def order_expire_confirmation(*, order: Order) -> bool:
    """System: nobody agreed the contract within the confirmation window. False if not due."""
    return _expire(
        order=order,
        action="expire_confirmation",
        due_field="confirmation_due_at",
        status=S.PENDING_CONFIRMATION,
        reason=CONFIRMATION_EXPIRED,
    )


@transaction.atomic
def order_expire_payment(*, order: Order) -> bool:
    """System: the initial payment window ended unpaid. False if not due."""
    return _expire(
        order=order,
        action="expire_payment",
        due_field="payment_due_at",
        status=S.AWAITING_PAYMENT,
        reason=PAYMENT_EXPIRED,
    )


# --- the set-based machinery for orders ------------------------------------------------------


@dataclass
class Moved:
    """One claimed order, the row it takes, and what the batch writes for it."""

    order: Order
    row: Transition
    from_status: str
    changes: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    topic: str = ""
    # (to the buyers?, title, body) for each notification of this order
    tells: list[tuple[bool, str, str]] = field(default_factory=list)


def _claim(
    statuses: Sequence[str], due_field: str, *, escrow_first: bool = False
) -> Callable[[datetime, int, int], list[Order]]:
    """Lock up to `limit` due orders past `after`, skipping those someone else holds. With
    `escrow_first`, their escrows are locked first (skipping held ones), then the orders."""

    def claim(now: datetime, after: int, limit: int) -> list[Order]:
        due = Order.objects.filter(status__in=statuses, **{f"{due_field}__lte": now}).order_by("pk")

        def lock(orders: QuerySet[Order]) -> list[Order]:
            return list(
                orders.select_for_update(of=("self",), skip_locked=True).annotate(
                    supplier_organisation_id=F("supplier__organisation_id")
                )[:limit]
            )

        if not escrow_first:
            return lock(due.filter(pk__gt=after))
        # Escrows first; when every escrow of a chunk is held by someone (a buyer accepting),
        # look further rather than end the run.
        while True:
            ids = list(due.filter(pk__gt=after).values_list("pk", flat=True)[:limit])
            if not ids:
                return []
            claimed = lock(due.filter(pk__in=escrows_lock_for_orders(order_ids=ids)))
            if claimed:
                return claimed
            after = ids[-1]

    return claim


def order_url(pk: int) -> str:
    """`Order.get_absolute_url` without resolving the URL once per order of a batch."""
    pattern = _URL_PATTERN.get("detail")
    if pattern is None:
        pattern = _URL_PATTERN["detail"] = (
            Order(pk=987654321).get_absolute_url().replace("987654321", "{}")
        )
    return pattern.format(pk)


_URL_PATTERN: dict[str, str] = {}


def _record_facts(order: Order) -> OrderRecordFacts:
    final: dict[str, str] = {
        S.COMPLETED: "completed",
        S.CANCELLED: "cancelled",
        S.REFUNDED: "refunded",
    }
    return OrderRecordFacts(
        supplier_id=order.supplier_id,
        order_reference=order.escrow_reference,
        amount=order.total,
        currency=order.currency,
        status=final.get(order.status, "open"),
        placed_at=order.placed_at,
        confirmed_at=order.confirmed_at,
        shipment_deadline=order.shipment_deadline,
        shipped_at=order.shipped_at,
        completed_at=order.completed_at,
        disputed=order.ever_disputed,
        dispute_lost=order.dispute_lost,
        rating=order.rating_score,
    )


def orders_move_many(moves: Sequence[Moved], *, now: datetime) -> int:
    """Write a batch of checked transitions of locked orders: the status changes (grouped into
    one compare-and-swap `UPDATE` per set of identical changes), one timeline row each, their
    domain events, notifications and supplier records, in the caller's transaction."""
    if not moves:
        return 0
    rows = []
    for move in moves:
        changes = dict(move.changes)
        to_status = LIFECYCLE.target_for(move.order, move.row)
        if to_status != move.from_status:
            changes["status"] = to_status
        for name, value in changes.items():
            setattr(move.order, name, value)
        rows.append((move.order.pk, move.from_status, changes))
    update_claimed_in_groups(Order, rows, also={"updated_at": now})
    bulk_insert(
        OrderEvent,
        [
            "order_id",
            "action",
            "actor_party",
            "actor_id",
            "from_status",
            "to_status",
            "note",
            "data",
            "created_at",
        ],
        [
            (
                move.order.pk,
                move.row.action,
                Party.SYSTEM,
                None,
                move.from_status,
                move.order.status,
                move.note,
                move.data,
                now,
            )
            for move in moves
        ],
    )
    events_publish_many(
        [
            EventSpec(
                topic=move.topic or f"order.{move.row.action}",
                subject_type="order",
                subject_id=move.order.pk,
                audience=(move.order.buyer_organisation_id, supplier_organisation_id(move.order)),
                payload={
                    "order": move.order.reference,
                    "action": move.row.action,
                    "from_status": move.from_status,
                    "to_status": move.order.status,
                    "actor": Party.SYSTEM,
                    **move.data,
                },
            )
            for move in moves
        ]
    )
    people = orders_people(move.order for move in moves)
    notices = []
    for move in moves:
        buyers, staff = people[move.order.pk]
        url = order_url(move.order.pk)
        for to_buyers, title, body in move.tells:
            notices.append(
                NoticeSpec(
                    users=tuple(buyers if to_buyers else staff),
                    title=f"{move.order.reference}: {title}",
                    body=body,
                    url=url,
                )
            )
    notify_many(notices)
    # The suppliers' records, then ONE Celery message recomputing the metrics of every supplier
    # in the batch after commit (the per-order services recompute in the request; a batch that
    # did so would spend most of its time recomputing the same few suppliers).
    supplier_order_records_sync_many([_record_facts(move.order) for move in moves])
    return len(moves)


def _checked(
    orders: Iterable[Order], action: str, name: str, **build: Any
) -> Iterable[tuple[Order, Transition]]:
    """Each claimed order with its row of the map; a refused one is reported and left as is."""
    for order in orders:
        try:
            yield order, LIFECYCLE.check(order, action, Party.SYSTEM)
        except DomainError as error:
            _alert(name)(order.pk, error)


def _sweep(
    *,
    name: str,
    statuses: Sequence[str],
    due_field: str,
    apply: Callable[[Sequence[Order], datetime], int],
    one_by_one: Callable[[int], bool],
    escrow_first: bool = False,
) -> int:
    return sweep_batches(
        BatchSweep(
            name=f"orders.{name}",
            claim=_claim(statuses, due_field, escrow_first=escrow_first),
            apply=apply,
            key=lambda order: order.pk,
            one_by_one=one_by_one,
            on_failure=_alert(name),
        ),
        batch_size=settings.TRADE_ASSURANCE["SWEEP_SET_BATCH_SIZE"],
    )


# --- the sweeps ------------------------------------------------------------------------------


def _cancel_many(orders: Sequence[Order], now: datetime, *, action: str, reason: str) -> int:
    moves = []
    for order, row in _checked(orders, action, f"sweep_{action}"):
        changes: dict[str, Any] = {
            "cancelled_at": now,
            "cancel_reason": reason,
            "confirmation_due_at": None,
            "payment_due_at": None,
            "shipment_due_at": None,
            "receipt_due_at": None,
            "completion_due_at": None,
            "proposal_pending_from": "",
        }
        moves.append(
            Moved(
                order=order,
                row=row,
                from_status=order.status,
                changes=changes,
                note=reason,
                topic="order.cancelled",
                tells=[
                    (True, "cancelled automatically", reason),
                    (False, "cancelled automatically", reason),
                ],
            )
        )
    with_proposal = [move.order.pk for move in moves if move.order.proposal_pending_from]
    if with_proposal:
        ContractVersion.objects.filter(
            order_id__in=with_proposal, state=ContractVersion.State.PROPOSED
        ).update(state=ContractVersion.State.WITHDRAWN, decided_at=now)
    return orders_move_many(moves, now=now)


def orders_sweep_confirmation_timeouts() -> int:
    """Cancel the orders nobody agreed within the confirmation window."""
    return _sweep(
        name="sweep_confirmation_timeouts",
        statuses=[S.PENDING_CONFIRMATION],
        due_field="confirmation_due_at",
        apply=lambda orders, now: _cancel_many(
            orders, now, action="expire_confirmation", reason=CONFIRMATION_EXPIRED
        ),
        one_by_one=lambda pk: order_expire_confirmation(order=Order(pk=pk)),
    )


def orders_sweep_payment_timeouts() -> int:
    """Cancel the orders whose initial payment window ended unpaid."""
    return _sweep(
        name="sweep_payment_timeouts",
        statuses=[S.AWAITING_PAYMENT],
        due_field="payment_due_at",
        apply=lambda orders, now: _cancel_many(
            orders, now, action="expire_payment", reason=PAYMENT_EXPIRED
        ),
        one_by_one=lambda pk: order_expire_payment(order=Order(pk=pk)),
    )


def _flag_late_many(orders: Sequence[Order], now: datetime) -> int:
    moves = [
        Moved(
            order=order,
            row=row,
            from_status=order.status,
            changes={"is_late": True, "late_flagged_at": now, "shipment_due_at": None},
            topic="order.shipment_late",
            tells=[
                (
                    True,
                    "shipment deadline passed — cancel with a full refund or extend",
                    "The supplier has not recorded a shipment by the agreed deadline. You may "
                    "cancel the order and get your payment back in full, or grant the supplier "
                    "more time.",
                ),
                (
                    False,
                    "shipment deadline passed",
                    "The buyer may now cancel with a full refund. Ship and record the shipment, "
                    "or ask the buyer for an extension.",
                ),
            ],
        )
        for order, row in _checked(orders, "flag_late", "sweep_shipment_deadlines")
    ]
    return orders_move_many(moves, now=now)


def orders_sweep_shipment_deadlines() -> int:
    """Flag late the paid orders not shipped by their deadline (not while the supplier waits for
    the buyer's balance: that wait moves the deadline instead)."""
    return _sweep(
        name="sweep_shipment_deadlines",
        statuses=list(SHIPMENT_CLOCK_RUNS),
        due_field="shipment_due_at",
        apply=_flag_late_many,
        one_by_one=lambda pk: order_flag_late(order=Order(pk=pk)),
    )


def _receive_many(orders: Sequence[Order], now: datetime) -> int:
    window = settings.TRADE_ASSURANCE["POST_DELIVERY_CLAIM_WINDOW"]
    moves = []
    for order, row in _checked(orders, "auto_confirm_receipt", "sweep_receipt_windows"):
        changes: dict[str, Any] = {"delivered_at": now, "receipt_due_at": None}
        if row.target == S.DELIVERED:
            completion_due_at = now + window
            changes["completion_due_at"] = completion_due_at
            topic = "order.delivered"
            tells = [
                (
                    True,
                    "received — accept the goods or open a dispute",
                    "Check the goods against the contract. Accept them to release the payment, "
                    f"or open a dispute by {completion_due_at:%Y-%m-%d}; then the payment is "
                    "released automatically.",
                ),
                (False, "the buyer has the goods (claim window open)", ""),
            ]
        else:
            changes["completed_at"] = now
            topic = "order.completed"
            tells = [
                (True, "completed — rate your supplier", ""),
                (False, "completed: the buyer has the goods", ""),
            ]
        moves.append(
            Moved(
                order=order,
                row=row,
                from_status=order.status,
                changes=changes,
                note="Receipt window ended.",
                topic=topic,
                tells=tells,
            )
        )
    return orders_move_many(moves, now=now)


def orders_sweep_receipt_windows() -> int:
    """Confirm receipt of shipped orders whose receipt window ended unconfirmed."""
    return _sweep(
        name="sweep_receipt_windows",
        statuses=[S.SHIPPED],
        due_field="receipt_due_at",
        apply=_receive_many,
        one_by_one=lambda pk: order_auto_confirm_receipt(order=Order(pk=pk)),
    )


def _complete_many(orders: Sequence[Order], now: datetime) -> int:
    """The escrows and then the orders are locked (by the claim): release every order's money
    with one set-based posting (`payments.services.escrows_release_many`, exactly once per
    order by its idempotency key, the same refusals and legs as the buyer's accept), then move
    them all. An order whose release is refused is reported to staff and left as it was."""
    checked = list(_checked(orders, "complete_after_window", "sweep_post_delivery_windows"))
    released = escrows_release_many(
        releases=[
            EscrowRelease(
                escrow_reference=order.escrow_reference,
                idempotency_key=order_money_key(order, "release", "completion"),
            )
            for order, _ in checked
        ]
    )
    moves = []
    for order, row in checked:
        amount = released[order.escrow_reference]
        if isinstance(amount, DomainError):
            _alert("sweep_post_delivery_windows")(order.pk, amount)
            continue
        moves.append(
            Moved(
                order=order,
                row=row,
                from_status=order.status,
                changes={"completed_at": now, "completion_due_at": None},
                note="Claim window ended.",
                data={"released": str(amount)},
                topic="order.completed",
                tells=[
                    (
                        False,
                        "completed — funds released",
                        f"{format_money(amount, order.currency)} released (the fee is "
                        "deducted on release).",
                    ),
                    (True, "completed — rate your supplier", ""),
                ],
            )
        )
    return orders_move_many(moves, now=now)


def orders_sweep_post_delivery_windows() -> int:
    """Complete delivered orders whose claim window closed with no dispute, releasing the money:
    escrows locked first, then the orders, as every money service does."""
    return _sweep(
        name="sweep_post_delivery_windows",
        statuses=[S.DELIVERED],
        due_field="completion_due_at",
        apply=_complete_many,
        one_by_one=lambda pk: order_complete_after_window(order=Order(pk=pk)),
        escrow_first=True,
    )


__all__ = [
    "Moved",
    "order_expire_confirmation",
    "order_expire_payment",
    "orders_move_many",
    "orders_sweep_confirmation_timeouts",
    "orders_sweep_payment_timeouts",
    "orders_sweep_post_delivery_windows",
    "orders_sweep_receipt_windows",
    "orders_sweep_shipment_deadlines",
]
