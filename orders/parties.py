"""Who acts on an order, and who is told: the one place that maps a user to a party.

Disputes reuse it (a dispute's parties are its order's), so the rule exists once."""

from accounts.models import User
from accounts.selectors import organisation_members
from orders.models import Order, Party


def party_of(*, order: Order, user: User | None) -> str | None:
    """The party a user acts as on this order (None: not involved). No user: the system."""
    if user is None:
        return Party.SYSTEM
    if not user.is_authenticated or not user.is_active:
        return None
    if user.organisation_id and user.organisation_id == order.buyer_organisation_id:
        return Party.BUYER if user.is_buyer else None
    if user.organisation_id and user.organisation_id == order.supplier.organisation_id:
        return Party.SUPPLIER if user.is_supplier_staff else None
    if user.is_mediator and user.is_staff:
        return Party.MEDIATOR
    return None


def order_buyers(order: Order) -> list[User]:
    """The buyer organisation's active buyers: they are told what the buyer must do."""
    return organisation_members(organisation_id=order.buyer_organisation_id, role=User.Role.BUYER)


def order_supplier_staff(order: Order) -> list[User]:
    """The supplier's active staff: they are told what the supplier must do."""
    return organisation_members(
        organisation_id=order.supplier.organisation_id, role=User.Role.SUPPLIER_STAFF
    )
