"""The orders transition engine: lock, check the map and the actor, move, record, tell; and
money through the payments layer. Private to orders.services."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings

from accounts.models import User
from orders.models import Order, OrderEvent, OrderStatus, Party
from orders.transitions import Transition, party_refusal, transitions_from
from tradeassure import clock
from tradeassure.errors import InvalidTransition, NotAllowed
from tradeassure.events import event_publish, notify

S = OrderStatus

DUE_FIELDS = (
    "confirmation_due_at",
    "payment_due_at",
    "shipment_due_at",
    "receipt_due_at",
    "completion_due_at",
)


def _rules() -> dict:
    return settings.TRADE_ASSURANCE


def party_of(*, order: Order, user: User | None) -> str | None:
    """The party a user acts as on this order (None: not involved). No user: the system."""
    if user is None:
        return Party.SYSTEM
    if user.organisation_id and user.organisation_id == order.buyer_organisation_id:
        return Party.BUYER if user.is_buyer else None
    if user.organisation_id and user.organisation_id == order.supplier.organisation_id:
        return Party.SUPPLIER if user.is_supplier_staff else None
    if user.is_mediator and user.is_staff:
        return Party.MEDIATOR
    return None


def _lock(order: Order | int, *, escrow_first: bool = False) -> Order:
    """Lock the order row. Services that will move money lock its escrow row first: the payments
    capture hook runs escrow → order, so every path takes the two locks in that order."""
    pk = order if isinstance(order, int) else order.pk
    if escrow_first:
        from payments.models import Escrow

        list(Escrow.objects.select_for_update().filter(reference=f"order:{pk}").values("pk"))
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("supplier__organisation", "buyer_organisation", "current_version")
        .get(pk=pk)
    )


def _status_label(status: str) -> str:
    return S(status).label if status in S.values else status


def _check(order: Order, action: str, party: str | None) -> Transition:
    rows = transitions_from(action, order.status)
    if not rows:
        label = next((t.label for t in _all_rows_for(action)), action.replace("_", " "))
        raise InvalidTransition(
            f"“{label}” is not possible while the order is {_status_label(order.status).lower()}.",
            code="invalid_transition",
        )
    if party is None or not any(party in row.actors for row in rows):
        raise NotAllowed(f"You may not do “{rows[0].label}” on this order.", code="not_allowed")
    refusal = party_refusal(order, action, party)
    if refusal:
        raise InvalidTransition(refusal, code="invalid_transition")
    for row in rows:
        if party in row.actors and row.allows(order):
            return row
    raise InvalidTransition(rows[0].refusal or "Not possible now.", code="invalid_transition")


def _all_rows_for(action: str) -> list[Transition]:
    from orders.transitions import TRANSITIONS

    return [t for t in TRANSITIONS if t.action == action]


def _members(organisation_id: int, role: str) -> list[User]:
    return list(User.objects.filter(organisation_id=organisation_id, role=role, is_active=True))


def _buyers(order: Order) -> list[User]:
    return _members(order.buyer_organisation_id, User.Role.BUYER)


def _suppliers(order: Order) -> list[User]:
    return _members(order.supplier.organisation_id, User.Role.SUPPLIER_STAFF)


def _tell(order: Order, users: Iterable[User], title: str, body: str = "") -> None:
    notify(
        users=users, title=f"{order.reference}: {title}", body=body, url=order.get_absolute_url()
    )


def _move(
    order: Order,
    row: Transition,
    *,
    party: str,
    actor: User | None,
    note: str = "",
    data: dict[str, Any] | None = None,
    topic: str | None = None,
    to_status: str | None = None,
) -> OrderEvent:
    """Apply a checked transition to a locked order: status, event row, domain event, record."""
    from_status = order.status
    to_status = to_status or row.target_for(order)
    order.status = to_status
    order.save()
    now = clock.now()
    event = OrderEvent.objects.create(
        order=order,
        action=row.action,
        actor_party=party,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        note=note,
        data=data or {},
        created_at=now,
    )
    event_publish(
        topic=topic or f"order.{row.action}",
        subject_type="order",
        subject_id=order.pk,
        audience=[order.buyer_organisation_id, order.supplier.organisation_id],
        payload={
            "order": order.reference,
            "action": row.action,
            "from_status": from_status,
            "to_status": to_status,
            "actor": party,
            **(data or {}),
        },
    )
    order_supplier_record_sync(order=order)
    return event


def _record_event(
    order: Order, *, action: str, party: str, actor: User | None, note: str = "", data=None
) -> OrderEvent:
    """A fact on the timeline that is not a status move (e.g. money returned)."""
    return OrderEvent.objects.create(
        order=order,
        action=action,
        actor_party=party,
        actor=actor,
        from_status=order.status,
        to_status=order.status,
        note=note,
        data=data or {},
        created_at=clock.now(),
    )


def order_supplier_record_sync(*, order: Order) -> None:
    """Feed the order's facts to the supplier's record (metrics, exposure, limit)."""
    from suppliers.services import supplier_order_record_sync

    record_status = {
        S.COMPLETED: "completed",
        S.CANCELLED: "cancelled",
        S.REFUNDED: "refunded",
    }.get(order.status, "open")
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


def _recompute_supplier_metrics(order: Order) -> None:
    from suppliers.services import supplier_metrics_recompute

    supplier_metrics_recompute(supplier=order.supplier)


def _clear_timers(order: Order) -> None:
    for name in DUE_FIELDS:
        setattr(order, name, None)


# --- money, through the payments layer --------------------------------------------------------


def _held(order: Order) -> Decimal:
    from payments.selectors import escrow_summary

    return escrow_summary(escrow_reference=order.escrow_reference).held


def _release_all(order: Order, *, key: str) -> Decimal:
    from payments.services import escrow_release

    held = _held(order)
    if held > 0:
        escrow_release(escrow_reference=order.escrow_reference, amount=held, idempotency_key=key)
    return held


def _refund(order: Order, *, amount: Decimal, key: str, reason: str) -> Decimal:
    from payments.services import escrow_refund

    if amount > 0:
        escrow_refund(
            escrow_reference=order.escrow_reference,
            amount=amount,
            idempotency_key=key,
            reason=reason,
        )
    return amount


def _key(order: Order, *parts: str) -> str:
    return ":".join(["order", str(order.pk), *parts])
