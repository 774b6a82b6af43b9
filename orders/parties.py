"""Who acts on an order, and who is told: the one place that maps a user to a party.

Disputes reuse it (a dispute's parties are its order's), so the rule exists once."""

from collections.abc import Iterable

from accounts.models import User
from accounts.selectors import organisation_members, organisation_members_many
from accounts.team import Capability, team_allows, team_require
from orders.models import Order, Party

# What a member's team role must allow to take each order action (accounts.team's table);
# every other action a buyer or supplier takes is trading (place, confirm, ship, receive, …).
# Paying is not a transition: `order_payment_start` requires Capability.PAY.
ACTION_CAPABILITY: dict[str, Capability] = {
    "dispute_opened": Capability.DISPUTE,
    "dispute_resolved_resume": Capability.DISPUTE,
    "dispute_resolved_refund": Capability.DISPUTE,
    "dispute_resolved_complete": Capability.DISPUTE,
    "dispute_resolved_replacement": Capability.DISPUTE,
    "contract_amended_by_dispute": Capability.DISPUTE,
}


def action_capability(action: str) -> Capability:
    return ACTION_CAPABILITY.get(action, Capability.TRADE)


def party_may(*, user: User | None, party: str | None, action: str) -> bool:
    """Whether the member's team role allows this action (staff and the system: the lifecycle
    alone decides)."""
    if party not in (Party.BUYER, Party.SUPPLIER):
        return True
    return team_allows(user, action_capability(action))


def party_require(*, user: User | None, party: str | None, action: str) -> None:
    """Refuse (RoleNotAllowed, 403 `role_not_allowed`) unless the role allows the action."""
    if party in (Party.BUYER, Party.SUPPLIER):
        team_require(user, action_capability(action))


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
