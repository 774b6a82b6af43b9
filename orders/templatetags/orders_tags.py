from datetime import timedelta
from decimal import Decimal

from django import template

from accounts.team import Capability, team_allows
from tradeassure.core.money import format_money

register = template.Library()

_BADGES = {
    "completed": "ok",
    "cancelled": "bad",
    "refunded": "bad",
    "disputed": "bad",
    "shipped": "ok",
    "delivered": "ok",
}


@register.filter
def money(amount, currency: str) -> str:
    if amount is None or amount == "":
        return "—"
    return format_money(Decimal(amount), currency)


@register.filter
def status_badge(order) -> str:
    """The badge class for an order's status (late orders warn)."""
    if order.is_late and order.status in ("in_production", "awaiting_balance", "ready_to_ship"):
        return "warn"
    return _BADGES.get(order.status, "")


_DEADLINES = (
    ("confirmation_due_at", "confirm by"),
    ("payment_due_at", "pay by"),
    ("shipment_due_at", "ship by"),
    ("receipt_due_at", "receipt auto-confirmed"),
    ("completion_due_at", "claim window ends"),
)


@register.filter
def deadlines(order) -> list[tuple[str, object]]:
    """Every timer that runs now, as (label, due), earliest first: each due date either party
    has is on the page (in "awaiting balance", the balance's due date and the shipment's)."""
    found = []
    for field, label in _DEADLINES:
        due = getattr(order, field)
        if due is None:
            continue
        if field == "payment_due_at":
            label = "pay the balance by" if order.status == "awaiting_balance" else "pay by"
        if field == "shipment_due_at" and order.status == "awaiting_balance":
            label = "ship by (moves by the wait for the balance)"
        found.append((label, due))
    return sorted(found, key=lambda item: item[1])


@register.filter
def next_deadline(order):
    """(label, due) of the timer that runs out first, or None."""
    found = deadlines(order)
    return found[0] if found else None


_EXTRA_LABELS = {"payment_returned": "Payment returned to the buyer"}


@register.filter
def event_label(action: str) -> str:
    from orders.transitions import TRANSITIONS

    for row in TRANSITIONS:
        if row.action == action:
            return row.label
    return _EXTRA_LABELS.get(action, action.replace("_", " ").capitalize())


_TIMER_LABELS = {
    "confirmation_due_at": "confirmation",
    "payment_due_at": "payment",
    "shipment_due_at": "shipment deadline",
    "receipt_due_at": "receipt window",
    "completion_due_at": "claim window",
}


@register.filter
def paused_timers(order) -> list[tuple[str, str]]:
    """The timers a dispute paused, with the time each had left ("12 days 4 h")."""
    paused = []
    for name, seconds in (order.paused_timers or {}).items():
        left = timedelta(seconds=seconds)
        paused.append((_TIMER_LABELS.get(name, name), f"{left.days} days {left.seconds // 3600} h"))
    return paused


@register.inclusion_tag("orders/_work_queue.html", takes_context=True)
def supplier_work_queue(context):
    """The supplier's work queue (what needs me, by deadline) on any page of supplier staff."""
    from orders.selectors import supplier_work_queue as queue

    user = context["request"].user
    # What waits is trading work (confirm, ship, answer a change): for the roles that trade.
    works = user.is_supplier_staff and team_allows(user, Capability.TRADE)
    return {"items": queue(user=user) if works else []}


@register.filter
def status_label(status: str) -> str:
    """An order status in words ("in_production" → "In production"), for timelines."""
    from orders.models import OrderStatus

    return str(OrderStatus(status).label) if status in OrderStatus.values else status
