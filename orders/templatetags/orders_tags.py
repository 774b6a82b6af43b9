from datetime import timedelta
from decimal import Decimal

from django import template

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


@register.filter
def next_deadline(order):
    """(label, due) of the timer that runs now, or None."""
    for field, label in (
        ("confirmation_due_at", "confirm by"),
        ("payment_due_at", "pay by"),
        ("shipment_due_at", "ship by"),
        ("receipt_due_at", "receipt auto-confirmed"),
        ("completion_due_at", "claim window ends"),
    ):
        due = getattr(order, field)
        if due is not None:
            return label, due
    return None


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
    "payment_due_at": "initial payment",
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
    return {"items": queue(user=user) if user.is_supplier_staff else []}
