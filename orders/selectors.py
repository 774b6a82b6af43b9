"""Reads the order pages (and the API) share: always filtered to what the user may see."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.utils.module_loading import import_string

from accounts.team import Capability, team_allows
from orders.error_codes import OrderErrorCode
from orders.inspection.models import InspectionStatus, PreshipmentInspection
from orders.models import (
    ContractLineItem,
    ContractVersion,
    Order,
    OrderEvent,
    OrderRating,
    OrderStatus,
    Party,
    Shipment,
    ShipmentDocument,
)
from orders.parties import action_capability
from orders.transitions import Transition, available_actions
from payments.selectors import EscrowSummary, escrow_summary
from suppliers.models import Supplier
from tradeassure.core import clock
from tradeassure.core.errors import NotFound

if TYPE_CHECKING:
    from orders.services import PlacedOrder

S = OrderStatus

# Status filters on the list pages: label → statuses.
STATUS_FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "action": ("Needs you", ()),  # computed per side, see _needs_action
    "open": (
        "Open",
        (
            S.PENDING_CONFIRMATION,
            S.AWAITING_PAYMENT,
            S.IN_PRODUCTION,
            S.AWAITING_BALANCE,
            S.READY_TO_SHIP,
            S.SHIPPED,
            S.DELIVERED,
        ),
    ),
    "disputed": ("Disputed", (S.DISPUTED,)),
    "closed": ("Closed", (S.COMPLETED, S.CANCELLED, S.REFUNDED)),
}


def _base() -> QuerySet[Order]:
    return Order.objects.select_related("supplier", "buyer_organisation", "buyer")


def orders_visible_to(user) -> QuerySet[Order]:
    """Orders the user may see: their buyer organisation's, their supplier's, or all for staff
    whose role grants `orders.view_order` (mediators, by their group). Visibility follows the
    permission, not `is_staff`: vetting staff vet suppliers and see no orders."""
    if not user.is_authenticated or not user.is_active:
        return Order.objects.none()
    if user.is_staff and user.has_perm("orders.view_order"):
        return _base()
    if user.organisation_id is None:
        return Order.objects.none()
    if user.is_buyer:
        return _base().filter(buyer_organisation_id=user.organisation_id)
    if user.is_supplier_staff:
        # By the supplier's id (one supplier per organisation), not a join on its organisation:
        # the planner can then walk the (supplier, newest first) index for a page.
        supplier_id = Supplier.objects.filter(organisation_id=user.organisation_id).values("pk")
        return _base().filter(supplier_id=Subquery(supplier_id[:1]))
    return Order.objects.none()


def _needs_action(party: str) -> Q:
    """What waits for this side: never a finished order (rating one is optional); a change the
    other side proposed; and, through ORDER_NEEDS_ACTION_HOOKS, a dispute waiting for it (the
    disputes app knows its own proposals)."""
    if party == Party.BUYER:
        query = (
            Q(status__in=[S.AWAITING_PAYMENT, S.AWAITING_BALANCE, S.SHIPPED, S.DELIVERED])
            | Q(proposal_pending_from=Party.SUPPLIER)
            | Q(is_late=True, status__in=[S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP])
            # The pre-shipment inspection: a fee to pay, or a failed report to answer.
            | Q(
                shipment_blocked_by_inspection=True,
                status__in=[S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP],
            )
            | Q(
                Exists(
                    PreshipmentInspection.objects.filter(
                        order_id=OuterRef("pk"), status=InspectionStatus.AWAITING_FEE
                    )
                )
            )
        )
    else:
        query = (
            Q(status__in=[S.IN_PRODUCTION, S.READY_TO_SHIP], proposal_pending_from="")
            | Q(status=S.PENDING_CONFIRMATION, proposal_pending_from="")
            | Q(proposal_pending_from=Party.BUYER)
        )
    for path in settings.ORDER_NEEDS_ACTION_HOOKS:
        query |= import_string(path)(party=party)
    return query


def order_list(*, user, party: str, status_filter: str = "", search: str = "") -> QuerySet[Order]:
    """A side's order list, filtered and searched (reference, PO number, supplier/buyer, goods)."""
    orders = orders_visible_to(user)
    if status_filter == "action":
        orders = orders.filter(_needs_action(party))
    elif status_filter in STATUS_FILTERS:
        orders = orders.filter(status__in=STATUS_FILTERS[status_filter][1])
    elif status_filter in S.values:
        orders = orders.filter(status=status_filter)
    search = search.strip()
    if search:
        query = (
            Q(purchase_order_number__icontains=search)
            | Q(summary__icontains=search)
            | Q(supplier__legal_name__icontains=search)
            | Q(buyer_organisation__name__icontains=search)
            # Wrapped in Q (the same tree: Q | Exists wraps it too) so the whole stays a Q.
            | Q(
                Exists(
                    ContractLineItem.objects.filter(
                        version_id=OuterRef("current_version_id"), description__icontains=search
                    )
                )
            )
        )
        reference = search.upper().removeprefix("TA-").lstrip("0")
        if reference.isdigit():
            query |= Q(pk=int(reference))
        orders = orders.filter(query)
    return orders.order_by("-placed_at", "-id")


def orders_due_soon(*, user, within: timedelta = timedelta(days=7)) -> QuerySet[Order]:
    """The supplier's orders with a deadline in the next days (or already late), soonest first."""
    horizon = clock.now() + within
    return (
        orders_visible_to(user)
        .filter(
            Q(confirmation_due_at__lte=horizon)
            | Q(
                shipment_due_at__lte=horizon,
                status__in=[S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP],
            )
            | Q(is_late=True, status__in=[S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP])
            # The pre-shipment inspection: a fee to pay, or a failed report to answer.
            | Q(
                shipment_blocked_by_inspection=True,
                status__in=[S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP],
            )
            | Q(
                Exists(
                    PreshipmentInspection.objects.filter(
                        order_id=OuterRef("pk"), status=InspectionStatus.AWAITING_FEE
                    )
                )
            )
        )
        .order_by("shipment_due_at", "confirmation_due_at", "id")
    )


def order_for_user(*, user, pk: int) -> Order:
    """One order with everything its page shows, or NotFound for anyone who may not see it.

    Four queries: the order (with how many versions and shipments it has), its timeline, its
    versions with their lines (one join, read from the lines), its shipments with their
    documents (one join, read from the documents). The order comes back as
    `prefetch_related` would leave it: `events`, `versions` (each with its `items`) and
    `shipments` (each with its `documents`) answer from memory. A version without lines or a
    shipment without documents (neither is ever written) would be missing from the join: the
    counts notice it and read the rest the plain way."""
    order = (
        orders_visible_to(user)
        .select_related("supplier__organisation", "rating")
        .annotate(
            versions_count=_count_of(ContractVersion),
            shipments_count=_count_of(Shipment),
            inspections_count=_count_of(PreshipmentInspection),
        )
        .filter(pk=pk)
        .first()
    )
    if order is None:
        raise NotFound("No such order.", code=OrderErrorCode.ORDER_NOT_FOUND)
    events = list(
        OrderEvent.objects.filter(order_id=order.pk).select_related("actor").order_by("id")
    )
    lines = (
        ContractLineItem.objects.filter(version__order_id=order.pk)
        .select_related("version__proposed_by", "version__decided_by", "product")
        .order_by("version__number", "position")
    )
    versions = _parents(list(lines), "version", "items")
    if len(versions) != order.versions_count:
        versions = _with_missing(
            versions,
            ContractVersion.objects.filter(order_id=order.pk)
            .select_related("proposed_by", "decided_by")
            .order_by("number"),
            "items",
            key=lambda version: version.number,
        )
    # Every shipment, oldest first: a replacement's page still shows the first one.
    documents = (
        ShipmentDocument.objects.filter(shipment__order_id=order.pk)
        .select_related("shipment")
        .order_by("shipment__recorded_at", "shipment_id", "kind", "id")
    )
    shipments = _parents(list(documents), "shipment", "documents")
    if len(shipments) != order.shipments_count:
        shipments = _with_missing(
            shipments,
            Shipment.objects.filter(order_id=order.pk).order_by("recorded_at", "id"),
            "documents",
            key=lambda shipment: (shipment.recorded_at, shipment.pk),
        )
    for child in [*events, *versions, *shipments]:
        child.order = order
    current = next((v for v in versions if v.pk == order.current_version_id), None)
    if current is not None:  # the contract in force is one of them (with its lines): no join
        order.current_version = current
    _prefetched(order, "events", events)
    _prefetched(order, "versions", versions)
    _prefetched(order, "shipments", shipments)
    return order


def _count_of(model) -> Subquery:
    """How many rows of `model` point at the order (a scalar subquery of the order's read)."""
    return Subquery(
        model.objects.filter(order_id=OuterRef("pk"))
        .order_by()
        .values("order_id")
        .annotate(n=Count("*"))
        .values("n")[:1],
        output_field=IntegerField(),
    )


def _parents(children: list, parent_field: str, related_name: str) -> list:
    """The distinct parents of children read with `select_related(parent_field)`, in the
    children's order, each holding its children as if prefetched under `related_name`."""
    parents: dict[int, Any] = {}
    grouped: dict[int, list] = {}
    for child in children:
        parent = getattr(child, parent_field)
        parent = parents.setdefault(parent.pk, parent)
        setattr(child, parent_field, parent)  # one instance per parent
        grouped.setdefault(parent.pk, []).append(child)
    for pk, parent in parents.items():
        _prefetched(parent, related_name, grouped[pk])
    return list(parents.values())


def _with_missing(found: list, everything: QuerySet, related_name: str, key) -> list:
    """`found` plus the rows of `everything` it lacks (each with no children), in key order."""
    known = {parent.pk for parent in found}
    missing = [parent for parent in everything if parent.pk not in known]
    for parent in missing:
        _prefetched(parent, related_name, [])
    return sorted([*found, *missing], key=key)


def _prefetched(instance, related_name: str, rows: list) -> None:
    """Cache `rows` as `prefetch_related(related_name)` would: `.all()` answers them, no query."""
    queryset = getattr(instance, related_name).all()  # lazy: no query
    queryset._result_cache = rows
    queryset._prefetch_done = True
    cache = instance.__dict__.setdefault("_prefetched_objects_cache", {})
    cache[related_name] = queryset


def shipment_document_for_user(*, user, order_pk: int, pk: int) -> ShipmentDocument:
    document = (
        ShipmentDocument.objects.filter(
            pk=pk, shipment__order__in=orders_visible_to(user), shipment__order_id=order_pk
        )
        .select_related("shipment")
        .first()
    )
    if document is None:
        raise NotFound("No such document.", code=OrderErrorCode.DOCUMENT_NOT_FOUND)
    return document


def order_party(*, order: Order, user) -> str | None:
    from orders.services import party_of

    return party_of(order=order, user=user)


def order_actions(*, order: Order, user) -> list[Transition]:
    """The actions this user may take on this order now (from the transition map)."""
    return _allowed(available_actions(order, order_party(order=order, user=user)), user)


def _allowed(rows: list[Transition], user) -> list[Transition]:
    """The rows the user's team role allows (the same table the services enforce)."""
    return [row for row in rows if team_allows(user, action_capability(row.action))]


# --- the order detail (API) ----------------------------------------------------------------


@dataclass(frozen=True)
class OrderMoney:
    """The order's escrow from the ledger, in the order's currency until an escrow is open."""

    currency: str
    frozen: bool
    captured: Decimal
    held: Decimal
    released: Decimal
    fees: Decimal
    refunded: Decimal
    supplier_net: Decimal


@dataclass(frozen=True)
class PaymentDue:
    purpose: str
    amount: Decimal


@dataclass(frozen=True)
class OrderDetail:
    """One order as one user sees it in full: the order plus what is computed for that user,
    kept beside the model instance instead of set on it."""

    order: Order
    your_party: str | None
    contract: ContractVersion | None  # the version in force, taken from the prefetched versions
    actions: tuple[Transition, ...]
    money: OrderMoney | None  # None: the caller's team role may not see money
    payment_due: PaymentDue | None
    versions: tuple[ContractVersion, ...] = ()  # each with its items loaded
    timeline: tuple[OrderEvent, ...] = ()
    shipment: Shipment | None = None  # the one in force
    rating: OrderRating | None = None


def _detail(
    order: Order,
    user,
    *,
    summary: EscrowSummary,
    versions: list[ContractVersion],
    timeline: list[OrderEvent],
    shipment: Shipment | None,
    rating: OrderRating | None,
) -> OrderDetail:
    """The detail of an order from its rows already in hand (no query)."""
    from orders.services import order_payment_due  # lazily, as order_party does

    party = order_party(order=order, user=user)
    due = order_payment_due(order)
    return OrderDetail(
        order=order,
        your_party=party,
        # The version in hand already has its items: no query for the contract's lines.
        contract=next(
            (version for version in versions if version.pk == order.current_version_id), None
        ),
        actions=tuple(_allowed(available_actions(order, party), user)),
        # The escrow's figures are money: only roles with `see_money` get them.
        money=OrderMoney(
            currency=summary.currency or order.currency,
            frozen=summary.frozen,
            captured=summary.captured,
            held=summary.held,
            released=summary.released,
            fees=summary.fees,
            refunded=summary.refunded,
            supplier_net=summary.supplier_net,
        )
        if team_allows(user, Capability.SEE_MONEY)
        else None,
        payment_due=PaymentDue(purpose=due[0], amount=due[1]) if due else None,
        versions=tuple(versions),
        timeline=tuple(timeline),
        shipment=shipment,
        rating=rating,
    )


def order_detail_for_user(*, user, pk: int) -> OrderDetail:
    """The order detail for this user, or NotFound for anyone who may not see the order."""
    order = order_for_user(user=user, pk=pk)
    try:
        rating: OrderRating | None = order.rating  # select_related: no query
    except OrderRating.DoesNotExist:
        rating = None
    return _detail(
        order,
        user,
        summary=escrow_summary(escrow_reference=order.escrow_reference),
        versions=list(order.versions.all()),  # prefetched, with their items
        timeline=list(order.events.all()),
        shipment=order.shipment,
        rating=rating,
    )


def order_detail_placed(*, placed: "PlacedOrder", user) -> OrderDetail:
    """The detail of an order `order_place_rows` has just written, from what it wrote: no query.

    A new order has only version 1 (its lines cached by `contract_version_create`), one
    timeline row, no shipment, no rating and no escrow yet (it opens on confirmation), so its
    money is all zero."""
    order = placed.order
    return _detail(
        order,
        user,
        summary=EscrowSummary(
            escrow_reference=order.escrow_reference, currency="", frozen=False, exists=False
        ),
        versions=[placed.version],
        timeline=[placed.event],
        shipment=None,
        rating=None,
    )


# --- contract versions and their differences -------------------------------------------------


@dataclass(frozen=True)
class Difference:
    label: str
    before: Any
    after: Any


_TERM_LABELS = [
    ("currency", "Currency"),
    ("coverage", "Coverage"),
    ("packaging", "Packaging"),
    ("customisation", "Customisation"),
    ("shipment_deadline", "Shipment deadline"),
    ("incoterm", "Incoterm"),
    ("destination", "Destination"),
    ("shipping_method", "Shipping method"),
    ("shipping_fee", "Shipping fee"),
    ("total", "Order total"),
    ("initial_payment_amount", "Initial payment"),
    ("balance_amount", "Balance"),
]
_ITEM_LABELS = [
    ("description", "description"),
    ("specifications", "specifications"),
    ("quality_requirements", "quality requirements"),
    ("quantity", "quantity"),
    ("unit", "unit"),
    ("unit_price", "unit price"),
    ("line_total", "line total"),
]


def _display(version: ContractVersion, name: str) -> Any:
    getter = getattr(version, f"get_{name}_display", None)
    return getter() if getter else getattr(version, name)


def contract_differences(old: ContractVersion, new: ContractVersion) -> list[Difference]:
    """What changed from one version to the next, term by term and line by line."""
    differences = [
        Difference(label, _display(old, name), _display(new, name))
        for name, label in _TERM_LABELS
        if getattr(old, name) != getattr(new, name)
    ]
    old_items = list(old.items.all())
    new_items = list(new.items.all())
    for position in range(1, max(len(old_items), len(new_items)) + 1):
        before = old_items[position - 1] if position <= len(old_items) else None
        after = new_items[position - 1] if position <= len(new_items) else None
        if before is None:
            differences.append(Difference(f"Line {position}", "—", f"added: {after}"))
        elif after is None:
            differences.append(Difference(f"Line {position}", str(before), "removed"))
        else:
            for name, label in _ITEM_LABELS:
                if getattr(before, name) != getattr(after, name):
                    differences.append(
                        Difference(
                            f"Line {position} {label}", getattr(before, name), getattr(after, name)
                        )
                    )
    return differences


def contract_history(order: Order) -> list[tuple[ContractVersion, list[Difference]]]:
    """Each version with its differences from the contract in force before it was proposed."""
    versions = sorted(order.versions.all(), key=lambda version: version.number)
    history = []
    in_force: ContractVersion | None = None
    for version in versions:
        differences = contract_differences(in_force, version) if in_force else []
        history.append((version, differences))
        if version.state == ContractVersion.State.ACCEPTED:
            in_force = version
    return list(reversed(history))


# --- the order page's progress, next step and money at a glance -----------------------------


@dataclass(frozen=True)
class ProgressStep:
    """One step of the stepper: done, current (where the order is), todo, or the stop."""

    key: str
    label: str
    state: str  # "done" | "current" | "todo" | "stopped"
    at: Any = None  # when it was reached (done steps)
    note: str = ""
    disputes: tuple[Any, ...] = ()  # when each dispute that branched off at this step opened


PROGRESS_STEPS = (
    ("placed", "Placed"),
    ("confirmed", "Confirmed"),
    ("paid", "Paid"),
    ("shipped", "Shipped"),
    ("received", "Received"),
    ("completed", "Completed"),
)
# How many steps a status has completed (paid-not-in-full statuses are 2: paid is current).
_STATUS_RANK: dict[str, int] = {
    S.PENDING_CONFIRMATION: 1,
    S.AWAITING_PAYMENT: 2,
    S.IN_PRODUCTION: 2,
    S.AWAITING_BALANCE: 2,
    S.READY_TO_SHIP: 3,
    S.SHIPPED: 4,
    S.DELIVERED: 5,
    S.COMPLETED: 6,
}


def _rank(status: str, order: Order) -> int:
    rank = _STATUS_RANK.get(status, 0)
    # With nothing left to pay after the initial payment, production already counts as paid.
    if status == S.IN_PRODUCTION and not order.balance_amount:
        return 3
    return rank


def order_progress(order: Order) -> list[ProgressStep]:
    """The stepper: placed → confirmed → paid → shipped → received → completed, from the
    prefetched timeline (no queries), with each dispute shown at the step it branched from and a
    cancelled or refunded order stopped after the last step it reached."""
    events = list(order.events.all())
    reached_at: dict[int, Any] = {}
    reached = 0
    branches: dict[int, list[Any]] = {}
    for event in events:
        if event.action == "dispute_opened":
            at = _rank(event.from_status, order)
            branches.setdefault(at, []).append(event.created_at)
            continue
        rank = _rank(event.to_status, order)
        for step in range(reached + 1, rank + 1):
            reached_at.setdefault(step, event.created_at)
        reached = max(reached, rank)
    status = order.status
    stopped = status in (S.CANCELLED, S.REFUNDED)
    if status == S.DISPUTED:
        reached = max(reached, _rank(order.status_before_dispute, order))
    steps: list[ProgressStep] = []
    for index, (key, label) in enumerate(PROGRESS_STEPS, start=1):
        if index <= reached:
            state = "done"
        elif index == reached + 1 and not stopped and status != S.COMPLETED:
            state = "current"
        else:
            state = "todo"
        note = ""
        if key == "paid" and state == "current" and status in (S.IN_PRODUCTION, S.AWAITING_BALANCE):
            note = "initial payment made, balance due"
        if state == "current" and status == S.DISPUTED:
            note = "on hold: dispute open"
        steps.append(
            ProgressStep(
                key=key,
                label=label,
                state=state,
                at=reached_at.get(index) if state == "done" else None,
                note=note,
                disputes=tuple(branches.get(index, ())),
            )
        )
    if stopped:
        steps = [step for step in steps if step.state == "done"]
        steps.append(
            ProgressStep(
                key=status,
                label="Refunded" if status == S.REFUNDED else "Cancelled",
                state="stopped",
                at=events[-1].created_at if events else None,
                disputes=tuple(branches.get(reached, ())),
            )
        )
    return steps


# Which of a party's actions is THE next step, most important first.
_PRIMARY_ORDER = (
    "pay",
    "confirm",
    "accept_changes",
    "request_balance",
    "mark_ready",
    "ship",
    "confirm_receipt",
    "accept_goods",
    "rate",
)

_WAITING_FOR: dict[str, str] = {
    S.PENDING_CONFIRMATION: "the supplier to confirm the order",
    S.AWAITING_PAYMENT: "the buyer to pay the initial payment",
    S.IN_PRODUCTION: "the supplier to produce the goods",
    S.AWAITING_BALANCE: "the buyer to pay the balance",
    S.READY_TO_SHIP: "the supplier to ship",
    S.SHIPPED: "the buyer to confirm receipt",
    S.DELIVERED: "the buyer to accept the goods (or open a dispute) in the claim window",
    S.DISPUTED: "the dispute to be settled or decided",
}


def order_primary_action(actions: list[Transition], *, payment_due: bool) -> str | None:
    """The one action the page puts first (None when nothing is needed from this user)."""
    names = {row.action for row in actions}
    if payment_due:
        names.add("pay")
    return next((name for name in _PRIMARY_ORDER if name in names), None)


def order_waiting_for(order: Order) -> str:
    """Whom the order waits for now, said plainly ('' once it is closed)."""
    if order.proposal_pending_from:
        return f"the {order.proposal_pending_from} to accept or decline the proposed changes"
    return _WAITING_FOR.get(order.status, "")


@dataclass(frozen=True)
class WorkItem:
    order: Order
    what: str
    due: Any  # datetime or None


_SUPPLIER_WORK: dict[str, tuple[str, str]] = {
    S.PENDING_CONFIRMATION: ("Confirm the order or propose changes", "confirmation_due_at"),
    S.IN_PRODUCTION: ("Produce, then request the balance or mark ready", "shipment_due_at"),
    S.READY_TO_SHIP: ("Ship and upload the documents", "shipment_due_at"),
    S.DISPUTED: ("The dispute waits for you: answer it on the dispute page", ""),
}


def supplier_work_queue(*, user, limit: int = 20) -> list[WorkItem]:
    """What needs this supplier's staff, soonest deadline first (late ones on top); one query."""
    orders = list(
        orders_visible_to(user).filter(_needs_action(Party.SUPPLIER)).order_by("id")[:500]
    )
    items = []
    for order in orders:
        what, field = _SUPPLIER_WORK.get(order.status, ("Open the order", ""))
        if order.proposal_pending_from == Party.BUYER:
            what = "Your proposed changes wait for the buyer"
        elif order.proposal_pending_from == Party.SUPPLIER:
            what = "The buyer proposed changes: accept or decline"
        if order.is_late and order.status in (S.IN_PRODUCTION, S.AWAITING_BALANCE, S.READY_TO_SHIP):
            what = "Late: ship now or ask the buyer for more time"
        items.append(WorkItem(order=order, what=what, due=getattr(order, field) if field else None))
    far = clock.now() + timedelta(days=100000)
    items.sort(key=lambda item: (item.due is None, item.due or far, item.order.pk))
    return items[:limit]
