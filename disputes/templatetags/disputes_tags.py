"""The dispute panel on the order page (`{% dispute_panel order %}`): the open dispute, the
disputes before it, and the "Open a dispute" entry point when the buyer may file one."""

from django import template

from disputes import selectors, services

register = template.Library()


@register.inclusion_tag("disputes/_order_panel.html", takes_context=True)
def dispute_panel(context, order):
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"disputes": [], "can_open": False}
    disputes = selectors.disputes_for_order(order=order, user=user)
    refusal = services.dispute_open_refusal(order=order, user=user) if user.is_buyer else "-"
    return {
        "order": order,
        "disputes": disputes,
        "open_dispute": next((d for d in disputes if d.is_open), None),
        "can_open": refusal is None,
    }


@register.filter
def party_label(value: str) -> str:
    return {
        "buyer": "Buyer",
        "supplier": "Supplier",
        "mediator": "Mediator",
        "inspector": "Inspector",
        "system": "System",
    }.get(value, value)


@register.filter
def action_label(action: str) -> str:
    from disputes.transitions import label_for

    label = label_for(action)
    return label if label != action else action.replace("_", " ").capitalize()


@register.filter
def dispute_status_label(status: str) -> str:
    """A dispute status in words ("awaiting_supplier" → "Awaiting the supplier's answer")."""
    from disputes.models import DisputeStatus

    return str(DisputeStatus(status).label) if status in DisputeStatus.values else status
