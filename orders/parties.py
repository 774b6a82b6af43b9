"""Who acts on an order, and who is told: the one place that maps a user to a party.

Disputes reuse it (a dispute's parties are its order's), so the rule exists once."""

from collections.abc import Iterable

from accounts.models import User
from accounts.selectors import organisation_members, organisation_members_many
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


def orders_people(orders: Iterable[Order]) -> dict[int, tuple[list[User], list[User]]]:
    """`order_buyers` and `order_supplier_staff` of many orders with one query (a sweep's
    batch): {order id: (buyers, supplier staff)}."""
    orders = list(orders)
    members = organisation_members_many(
        organisation_ids={o.buyer_organisation_id for o in orders}
        | {supplier_organisation_id(o) for o in orders},
        roles=[User.Role.BUYER, User.Role.SUPPLIER_STAFF],
    )
    return {
        order.pk: (
            members.get((order.buyer_organisation_id, User.Role.BUYER), []),
            members.get((supplier_organisation_id(order), User.Role.SUPPLIER_STAFF), []),
        )
        for order in orders
    }


def supplier_organisation_id(order: Order) -> int:
    """The supplier's organisation, from the `supplier_organisation_id` a batch query annotated
    on the order (no Supplier row loaded per order), else from its supplier."""
    annotated = order.__dict__.get("supplier_organisation_id")
    return int(annotated) if annotated is not None else order.supplier.organisation_id
