from decimal import Decimal

from django import template

from tradeassure.money import format_money

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
