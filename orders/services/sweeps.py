"""Deadline sweeps (Celery beat, every 60 s): batched, idempotent, safe when run twice at once."""

import logging
from collections.abc import Callable, Sequence

from django.db import transaction

from orders.models import Order, OrderStatus, Party
from orders.services._engine import _buyers, _check, _lock, _rules, _suppliers, _tell
from orders.services.placing import _cancel
from orders.services.receipt import order_auto_confirm_receipt, order_complete_after_window
from orders.services.shipping import order_flag_late
from orders.transitions import PAID_NOT_SHIPPED
from tradeassure import clock
from tradeassure.errors import DomainError
from tradeassure.models import SystemAlert

logger = logging.getLogger(__name__)
S = OrderStatus


def _sweep(
    *, due_field: str, statuses: Sequence[str], apply: Callable[[Order], bool], name: str
) -> int:
    """Apply `apply` to every order whose `due_field` has passed, in batches.

    Each batch locks its rows with SKIP LOCKED, so two sweeps at once share the work instead of
    doing it twice; each order is handled in its own savepoint and re-checked under the lock by
    the service, so a repeated sweep (or a crashed worker's retry) finds nothing left to do.
    An order whose service refuses is skipped for this run and reported as a SystemAlert.
    """
    batch_size = _rules()["SWEEP_BATCH_SIZE"]
    done = 0
    failed: set[int] = set()
    while True:
        now = clock.now()
        with transaction.atomic():
            batch = list(
                Order.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status__in=statuses, **{f"{due_field}__lte": now})
                .exclude(pk__in=failed)
                .order_by(due_field, "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not batch:
                return done
            for order_id in batch:
                try:
                    with transaction.atomic():
                        if apply(Order(pk=order_id)):
                            done += 1
                except Exception as error:
                    # Skipped for this run (the savepoint undid its part); staff are told.
                    failed.add(order_id)
                    logger.exception("%s: order %s failed", name, order_id)
                    message = error.message if isinstance(error, DomainError) else repr(error)
                    SystemAlert.objects.create(
                        source=f"orders.{name}",
                        message=f"Order {order_id}: {message}"[:2000],
                        created_at=clock.now(),
                    )


def _expire(*, order: Order, action: str, due_field: str, status: str, reason: str) -> bool:
    order = _lock(order)
    due = getattr(order, due_field)
    if order.status != status or due is None or due > clock.now():
        return False
    row = _check(order, action, Party.SYSTEM)
    _cancel(order, row, party=Party.SYSTEM, actor=None, reason=reason)
    for users in (_buyers(order), _suppliers(order)):
        _tell(order, users, "cancelled automatically", reason)
    return True


@transaction.atomic
def order_expire_confirmation(*, order: Order) -> bool:
    """System: nobody agreed the contract within the confirmation window. False if not due."""
    return _expire(
        order=order,
        action="expire_confirmation",
        due_field="confirmation_due_at",
        status=S.PENDING_CONFIRMATION,
        reason="The contract was not agreed within the confirmation window.",
    )


@transaction.atomic
def order_expire_payment(*, order: Order) -> bool:
    """System: the initial payment window ended unpaid. False if not due."""
    return _expire(
        order=order,
        action="expire_payment",
        due_field="payment_due_at",
        status=S.AWAITING_PAYMENT,
        reason="The initial payment was not made within the payment window.",
    )


def orders_sweep_confirmation_timeouts() -> int:
    return _sweep(
        due_field="confirmation_due_at",
        statuses=[S.PENDING_CONFIRMATION],
        apply=lambda order: order_expire_confirmation(order=order),
        name="sweep_confirmation_timeouts",
    )


def orders_sweep_payment_timeouts() -> int:
    return _sweep(
        due_field="payment_due_at",
        statuses=[S.AWAITING_PAYMENT],
        apply=lambda order: order_expire_payment(order=order),
        name="sweep_payment_timeouts",
    )


def orders_sweep_shipment_deadlines() -> int:
    return _sweep(
        due_field="shipment_due_at",
        statuses=list(PAID_NOT_SHIPPED),
        apply=lambda order: order_flag_late(order=order),
        name="sweep_shipment_deadlines",
    )


def orders_sweep_receipt_windows() -> int:
    return _sweep(
        due_field="receipt_due_at",
        statuses=[S.SHIPPED],
        apply=lambda order: order_auto_confirm_receipt(order=order),
        name="sweep_receipt_windows",
    )


def orders_sweep_post_delivery_windows() -> int:
    return _sweep(
        due_field="completion_due_at",
        statuses=[S.DELIVERED],
        apply=lambda order: order_complete_after_window(order=order),
        name="sweep_post_delivery_windows",
    )
