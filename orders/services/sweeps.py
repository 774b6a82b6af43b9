"""Deadline sweeps (Celery beat, every 60 s): batched, idempotent, safe when run twice at once.

Each sweep is `tradeassure.core.sweeps.sweep_due` over the orders whose deadline has passed:
the ids are picked without a lock, and each order is handled in its own transaction by its
service, which locks it (after its escrow when money moves) and re-checks the deadline. An
order that fails is skipped for this run, logged, and reported to staff as a SystemAlert.
"""

from collections.abc import Callable, Sequence
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from orders.models import Order, OrderStatus, Party
from orders.parties import order_buyers, order_supplier_staff
from orders.services._engine import order_lock, order_tell
from orders.services.placing import order_cancel_apply
from orders.services.receipt import order_auto_confirm_receipt, order_complete_after_window
from orders.services.shipping import order_flag_late
from orders.transitions import LIFECYCLE, SHIPMENT_CLOCK_RUNS
from tradeassure.core import clock
from tradeassure.core.errors import DomainError
from tradeassure.core.sweeps import sweep_due
from tradeassure.platform.models import SystemAlert

S = OrderStatus


def _orders_due(
    *, name: str, due_field: str, statuses: Sequence[str], handle: Callable[[Order], bool]
) -> int:
    """Run `handle` on every order in `statuses` whose `due_field` has passed."""

    def due(now: datetime) -> QuerySet[Order]:
        return Order.objects.filter(status__in=statuses, **{f"{due_field}__lte": now})

    def alert(order_id: int, error: Exception) -> None:
        message = error.message if isinstance(error, DomainError) else repr(error)
        SystemAlert.objects.create(
            source=f"orders.{name}",
            message=f"Order {order_id}: {message}"[:2000],
            created_at=clock.now(),
        )

    return sweep_due(
        due=due,
        handle=lambda order_id: handle(Order(pk=order_id)),
        batch_size=settings.TRADE_ASSURANCE["SWEEP_BATCH_SIZE"],
        name=f"orders.{name}",
        on_failure=alert,
    )


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


# Each handle looks its service up by name when it runs, so a test may replace one here.
def orders_sweep_confirmation_timeouts() -> int:
    return _orders_due(
        due_field="confirmation_due_at",
        statuses=[S.PENDING_CONFIRMATION],
        handle=lambda order: order_expire_confirmation(order=order),
        name="sweep_confirmation_timeouts",
    )


def orders_sweep_payment_timeouts() -> int:
    return _orders_due(
        due_field="payment_due_at",
        statuses=[S.AWAITING_PAYMENT],
        handle=lambda order: order_expire_payment(order=order),
        name="sweep_payment_timeouts",
    )


def orders_sweep_shipment_deadlines() -> int:
    return _orders_due(
        due_field="shipment_due_at",
        statuses=list(SHIPMENT_CLOCK_RUNS),
        handle=lambda order: order_flag_late(order=order),
        name="sweep_shipment_deadlines",
    )


def orders_sweep_receipt_windows() -> int:
    return _orders_due(
        due_field="receipt_due_at",
        statuses=[S.SHIPPED],
        handle=lambda order: order_auto_confirm_receipt(order=order),
        name="sweep_receipt_windows",
    )


def orders_sweep_post_delivery_windows() -> int:
    """Completing releases the money: the service locks the escrow first, then the order."""
    return _orders_due(
        due_field="completion_due_at",
        statuses=[S.DELIVERED],
        handle=lambda order: order_complete_after_window(order=order),
        name="sweep_post_delivery_windows",
    )
