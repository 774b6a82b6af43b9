"""Placing an order, changing its contract (versions, proposals), and cancelling it before money
is held. Confirming opens the escrow, so confirm and accept lock it before the order."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.team import Capability, team_require
from orders.error_codes import OrderErrorCode
from orders.inspection.holds import inspection_hold_lift
from orders.inspection.models import InspectionResolution
from orders.models import (
    ContractLineItem,
    ContractVersion,
    Order,
    OrderEvent,
    OrderStatus,
    Party,
)
from orders.parties import order_buyers, order_supplier_staff
from orders.services._engine import (
    order_check,
    order_contract,
    order_event_publish,
    order_lock,
    order_move,
    order_tell,
    order_timers_clear,
)
from orders.terms import (
    ContractTerms,
    ContractTotals,
    contract_terms_of,
    contract_terms_validate,
    money_terms_changed,
)
from orders.transitions import LIFECYCLE, PAID_NOT_SHIPPED, Transition
from payments.services import escrow_open
from suppliers.models import Supplier
from suppliers.services import (
    supplier_assert_can_take_order,
    supplier_check_order_in_transaction,
    supplier_order_record_open,
)
from tradeassure.core import clock
from tradeassure.core.bulk import NewId, NextId, insert_linked
from tradeassure.core.errors import NotAllowed, Unprocessable, ValidationFailed
from tradeassure.core.moments import moment_token
from tradeassure.core.money import format_money
from tradeassure.platform.events import outbox_batch

S = OrderStatus


def money_is_held(order: Order) -> bool:
    """From the initial payment's capture on, price, quantities and payment terms are frozen."""
    return order.initial_paid_at is not None


def contract_version_create(
    *,
    order: Order,
    terms: ContractTerms,
    totals: ContractTotals,
    state: str,
    party: str,
    actor: User | None,
    note: str,
    number: int | None = None,
) -> ContractVersion:
    """Store terms as the order's next contract version, with its lines and computed totals.

    `number` when the caller knows it (nothing to look up). The version comes back with its
    lines cached as its `items` (no read to list what was just written)."""
    if number is None:
        last = order.versions.order_by("-number").values_list("number", flat=True).first() or 0
        number = last + 1
    version, items = contract_version_build(
        order_id=order.pk,
        terms=terms,
        totals=totals,
        state=state,
        party=party,
        actor=actor,
        note=note,
        number=number,
    )
    version.order = order
    version.save(force_insert=True)
    for item in items:
        item.version = version
    ContractLineItem.objects.bulk_create(items)
    _cache_items(version, items)
    return version


def contract_version_build(
    *,
    order_id: Any,
    terms: ContractTerms,
    totals: ContractTotals,
    state: str,
    party: str,
    actor: User | None,
    note: str,
    number: int,
) -> tuple[ContractVersion, list[ContractLineItem]]:
    """A contract version and its lines as unsaved rows (`order_id` may be a `NewId`)."""
    now = clock.now()
    accepted = state == ContractVersion.State.ACCEPTED
    version = ContractVersion(
        order_id=order_id,
        number=number,
        state=state,
        proposed_by_party=party,
        proposed_by=actor,
        proposal_note=note,
        created_at=now,
        decided_at=now if accepted else None,
        decided_by=actor if accepted else None,
        currency=terms.currency,
        coverage=terms.coverage,
        packaging=terms.packaging,
        customisation=terms.customisation,
        shipment_deadline=terms.shipment_deadline,
        incoterm=terms.incoterm,
        destination=terms.destination.strip(),
        shipping_method=terms.shipping_method,
        shipping_fee=totals.shipping_fee,
        subtotal=totals.subtotal,
        total=totals.total,
        initial_payment_amount=totals.initial_payment_amount,
        balance_amount=totals.balance_amount,
    )
    items = [
        ContractLineItem(
            position=position,
            product_id=item.product_id,
            description=item.description.strip(),
            specifications=item.specifications,
            quality_requirements=item.quality_requirements,
            quantity=item.quantity,
            unit=item.unit.strip(),
            unit_price=item.unit_price,
            line_total=line_total,
        )
        for position, (item, line_total) in enumerate(
            zip(terms.items, totals.line_totals, strict=True), start=1
        )
    ]
    return version, items


def _cache_items(version: ContractVersion, items: list[ContractLineItem]) -> None:
    """Cache the lines just written as `prefetch_related("items")` would (a queryset holding
    them), so reading the version's lines back costs no query. Versions never change their
    lines once written, so the cache cannot go stale."""
    queryset = version.items.all()  # lazy: no query
    queryset._result_cache = list(items)
    queryset._prefetch_done = True  # type: ignore[attr-defined]  # as Django's prefetch sets it
    version._prefetched_objects_cache = {"items": queryset}  # type: ignore[attr-defined]


def contract_version_adopt(
    order: Order, version: ContractVersion, items: list[ContractLineItem] | None = None
) -> None:
    """Make a version the contract in force: copy its terms onto the order row. `items`: its
    lines when the caller holds them (a version not yet written)."""
    cached = items
    if cached is None:
        cached = getattr(version, "_prefetched_objects_cache", {}).get("items")
    if cached is not None:  # just written (or prefetched): no need to read them back
        lines = list(cached)
        first, count = (lines[0] if lines else None), len(lines)
    else:
        first = version.items.order_by("position").first()
        count = version.items.count()
    summary = first.description if first else ""
    if count > 1:
        summary = f"{summary} and {count - 1} more"
    order.current_version = version
    order.summary = summary[:250]
    order.currency = version.currency
    order.coverage = version.coverage
    order.subtotal = version.subtotal
    order.shipping_fee = version.shipping_fee
    order.total = version.total
    order.initial_payment_amount = version.initial_payment_amount
    order.balance_amount = version.balance_amount
    if order.shipment_deadline != version.shipment_deadline:
        order.shipment_deadline = version.shipment_deadline
        if order.status == S.AWAITING_PAYMENT or order.status in PAID_NOT_SHIPPED:
            # The deadline timer runs from confirmation; a later deadline also ends lateness.
            order.shipment_due_at = version.shipment_deadline
            order.is_late = False


@transaction.atomic
def order_terms_check(*, supplier: Supplier, terms: ContractTerms) -> ContractTotals:
    """Everything order_place checks, without placing: for the buyer's review step."""
    totals = contract_terms_validate(supplier=supplier, terms=terms)
    supplier_assert_can_take_order(supplier=supplier, amount=totals.total, currency=terms.currency)
    return totals


@dataclass(frozen=True)
class PlacedOrder:
    """What `order_place_rows` wrote: enough to show the new order without reading it back."""

    order: Order
    version: ContractVersion  # version 1, its lines cached
    event: OrderEvent  # the "place" timeline row


def order_place(
    *,
    buyer: User,
    supplier: Supplier | int,
    terms: ContractTerms,
    purchase_order_number: str = "",
    note: str = "",
) -> Order:
    """The buyer submits the contract (version 1); the supplier has the confirmation window."""
    return order_place_rows(
        buyer=buyer,
        supplier=supplier,
        terms=terms,
        purchase_order_number=purchase_order_number,
        note=note,
    ).order


@transaction.atomic
def order_place_rows(
    *,
    buyer: User,
    supplier: Supplier | int,
    terms: ContractTerms,
    purchase_order_number: str = "",
    note: str = "",
) -> PlacedOrder:
    """`order_place`, answering with the rows it wrote (for the API's 201 answer)."""
    return order_place_rows_in_transaction(
        buyer=buyer,
        supplier=supplier,
        terms=terms,
        purchase_order_number=purchase_order_number,
        note=note,
    )


def order_place_rows_in_transaction(
    *,
    buyer: User,
    supplier: Supplier | int,
    terms: ContractTerms,
    purchase_order_number: str = "",
    note: str = "",
) -> PlacedOrder:
    """`order_place_rows` for a caller that holds its own transaction and writes more in it
    (the API stores its answer for the Idempotency-Key in the same one): no savepoint of its
    own, so a refusal must end the caller's transaction, as it does.

    `supplier` may be an id: the supplier's lock is its only read (no such supplier:
    ValidationFailed on `supplier_id`). Written in as few statements as the rows need: the
    order, version 1 and its lines, one timeline row, one domain event, the supplier's record,
    notifications, and the outbox rows in one INSERT.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("order_place_rows_in_transaction needs the caller's transaction.")
    if not buyer.is_buyer or buyer.organisation_id is None:
        raise NotAllowed("Only buyers can place orders.", code=OrderErrorCode.NOT_A_BUYER)
    team_require(buyer, Capability.TRADE)
    supplier_id = supplier if isinstance(supplier, int) else supplier.pk
    totals = contract_terms_validate(supplier=supplier_id, terms=terms)
    locked = supplier_check_order_in_transaction(
        supplier_id=supplier_id, amount=totals.total, currency=terms.currency
    )
    now = clock.now()
    row = LIFECYCLE.rows_from("place", "")[0]
    order = Order(
        buyer_organisation_id=buyer.organisation_id,
        buyer=buyer,
        supplier=locked,
        purchase_order_number=purchase_order_number.strip()[:40],
        status="",
        shipment_deadline=terms.shipment_deadline,
        placed_at=now,
        confirmation_due_at=now + settings.TRADE_ASSURANCE["SUPPLIER_CONFIRMATION_WINDOW"],
    )
    if buyer.organisation is not None:  # loaded with the user by the API key's read
        order.buyer_organisation = buyer.organisation
    version, items = contract_version_build(
        order_id=NewId(order),
        terms=terms,
        totals=totals,
        state=ContractVersion.State.ACCEPTED,
        party=Party.BUYER,
        actor=buyer,
        note=note,
        number=1,
    )
    contract_version_adopt(order, version, items)  # the order's money and summary, from version 1
    order.status = LIFECYCLE.target_for(order, row)  # "" → pending confirmation
    event = LIFECYCLE.timeline_row(
        order,
        action=row.action,
        party=Party.BUYER,
        actor=buyer,
        note=note,
        data={"version": 1},
        from_status="",  # the order did not exist before
    )
    # The order, version 1, its lines and the timeline row in ONE statement. Nobody else can
    # see the order before commit, so it needs no lock. It points at its version before the
    # version exists: the version's id is drawn from its sequence by the order's INSERT (the
    # foreign key is checked at commit).
    order.current_version_id = NextId(ContractVersion)  # type: ignore[assignment]
    version.pk = NewId(order, "current_version_id")  # type: ignore[assignment]
    for item in items:
        item.version_id = NewId(version)  # type: ignore[assignment]
    event.order_id = NewId(order)
    insert_linked([order, version, *items, event])
    _cache_items(version, items)
    order.current_version = version
    event.order = order
    with outbox_batch():
        order_event_publish(
            order, row, event, party=Party.BUYER, data={"version": 1}, topic="order.placed"
        )
        supplier_order_record_open(
            supplier=locked,
            order_reference=order.escrow_reference,
            amount=order.total,
            currency=order.currency,
            placed_at=order.placed_at,
            shipment_deadline=order.shipment_deadline,
        )
        order_tell(
            order,
            order_supplier_staff(order),
            "new order to confirm",
            f"{buyer.organisation} placed an order for "
            f"{format_money(order.total, order.currency)}. "
            f"Confirm it or propose changes by {moment_token(order.confirmation_due_at)}, "
            "or it is cancelled automatically.",
        )
    return PlacedOrder(order=order, version=version, event=event)


@transaction.atomic
def order_confirm(*, order: Order, actor: User, note: str = "") -> Order:
    """The supplier accepts the contract as it stands; the buyer now has the payment window."""
    order = order_lock(order, escrow_first=True)
    row, party = order_check(order, "confirm", actor)
    # The supplier's exposure may have grown since the order was placed: it must still fit.
    supplier_assert_can_take_order(
        supplier=order.supplier,
        amount=order.total,
        currency=order.currency,
        exclude_order_reference=order.escrow_reference,
    )
    _start_payment_window(order)
    order_move(order, row, party=party, actor=actor, note=note, topic="order.confirmed")
    _tell_confirmed(order)
    return order


def initial_payment_due(*, now: datetime, shipment_deadline: datetime) -> datetime:
    """The initial payment window, but never past halfway to the shipment deadline: the buyer's
    payment always falls due before the supplier must ship, leaving at least half the time to
    produce (a 45-day shipment date gives 22.5 days to pay, not 60)."""
    window_end = now + settings.TRADE_ASSURANCE["INITIAL_PAYMENT_WINDOW"]
    halfway = now + max(shipment_deadline - now, timedelta(0)) / 2
    return min(window_end, halfway)


def _start_payment_window(order: Order) -> None:
    now = clock.now()
    order.confirmed_at = now
    order.confirmation_due_at = None
    order.payment_due_at = initial_payment_due(now=now, shipment_deadline=order.shipment_deadline)
    order.shipment_due_at = order.shipment_deadline
    escrow_open(
        escrow_reference=order.escrow_reference,
        currency=order.currency,
        buyer_organisation=order.buyer_organisation,
        supplier_organisation=order.supplier.organisation,
        description=f"{order.reference} — {order.summary}"[:200],
    )


def _tell_confirmed(order: Order) -> None:
    order_tell(
        order,
        order_buyers(order),
        "confirmed — pay the initial payment",
        f"{order.supplier} confirmed your order. Pay the initial payment of "
        f"{format_money(order.initial_payment_amount, order.currency)} by "
        f"{moment_token(order.payment_due_at)} or the order is cancelled automatically. "
        "The money is held in escrow until the contract is met.",
    )


@transaction.atomic
def order_propose_changes(
    *, order: Order, actor: User, terms: ContractTerms, note: str = ""
) -> ContractVersion:
    """A party proposes a new contract version; the other party accepts or declines it.

    Before confirmation only the supplier proposes (instead of confirming). Once money is held,
    price, quantities, currency, coverage and payment terms are frozen.
    """
    order = order_lock(order)
    row, party = order_check(order, "propose_changes", actor)
    current = contract_terms_of(order_contract(order))
    if money_is_held(order):
        changed = money_terms_changed(current, terms)
        if changed:
            raise Unprocessable(
                "Money is held for this order, so its price, quantities and payment terms can "
                f"no longer change (you changed: {', '.join(changed)}). Open a dispute to agree "
                "new money terms.",
                code=OrderErrorCode.MONEY_TERMS_FROZEN,
                fields={"__all__": [f"Frozen: {', '.join(changed)}"]},
            )
    if terms == current:
        raise ValidationFailed("The proposal changes nothing.", code=OrderErrorCode.NO_CHANGES)
    deadline_changed = terms.shipment_deadline != current.shipment_deadline
    totals = contract_terms_validate(
        supplier=order.supplier, terms=terms, check_deadline=deadline_changed
    )
    version = contract_version_create(
        order=order,
        terms=terms,
        totals=totals,
        state=ContractVersion.State.PROPOSED,
        party=party,
        actor=actor,
        note=note,
    )
    order.proposal_pending_from = party
    if order.status == S.PENDING_CONFIRMATION:
        # The buyer now has to answer; give them the same window the supplier had.
        order.confirmation_due_at = (
            clock.now() + settings.TRADE_ASSURANCE["SUPPLIER_CONFIRMATION_WINDOW"]
        )
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"version": version.number},
        topic="order.changes_proposed",
    )
    other = order_buyers(order) if party == Party.SUPPLIER else order_supplier_staff(order)
    order_tell(
        order,
        other,
        f"changes proposed (version {version.number}) — accept or decline",
        (note + "\n\n" if note else "")
        + "Review the differences on the order page and accept or decline them.",
    )
    return version


def _pending_version(order: Order) -> ContractVersion:
    return order.versions.select_for_update().get(state=ContractVersion.State.PROPOSED)


@transaction.atomic
def order_accept_changes(*, order: Order, actor: User, note: str = "") -> Order:
    """The other party accepts the proposed version; it becomes the contract in force.

    Accepting the supplier's proposal before confirmation confirms the order.
    """
    order = order_lock(order, escrow_first=True)
    row, party = order_check(order, "accept_changes", actor)
    version = _pending_version(order)
    if money_is_held(order) and money_terms_changed(
        contract_terms_of(order_contract(order)), contract_terms_of(version)
    ):
        raise Unprocessable(
            "Money is now held for this order; this proposal changes money terms and can no "
            "longer be accepted.",
            code=OrderErrorCode.MONEY_TERMS_FROZEN,
        )
    if version.total > order.total:
        # A larger order must still fit the supplier's limit (this order's old amount aside).
        supplier_assert_can_take_order(
            supplier=order.supplier,
            amount=version.total,
            currency=version.currency,
            exclude_order_reference=order.escrow_reference,
        )
    now = clock.now()
    previous = order_contract(order)
    version.state = ContractVersion.State.ACCEPTED
    version.decided_at = now
    version.decided_by = actor
    version.save()
    order.proposal_pending_from = ""
    was_pending = order.status == S.PENDING_CONFIRMATION
    contract_version_adopt(order, version)
    if was_pending:
        _start_payment_window(order)
    # A new contract version is an agreement after a failed pre-shipment inspection.
    inspection_hold_lift(
        order,
        resolution=InspectionResolution.CONTRACT_VERSION,
        party=party,
        actor=actor,
        note=f"Contract version {version.number} accepted.",
    )
    order_move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"version": version.number, "previous_version": previous.number},
        topic="order.changes_accepted",
    )
    if was_pending:
        _tell_confirmed(order)
        order_tell(
            order,
            order_supplier_staff(order),
            f"your changes were accepted (version {version.number})",
        )
    else:
        other = order_buyers(order) if party == Party.SUPPLIER else order_supplier_staff(order)
        order_tell(order, other, f"your proposed change was accepted (version {version.number})")
    return order


@transaction.atomic
def order_decline_changes(*, order: Order, actor: User, note: str = "") -> Order:
    """The other party declines the proposal; the contract in force stays as it was."""
    return _close_proposal(
        order=order,
        actor=actor,
        note=note,
        action="decline_changes",
        state=ContractVersion.State.DECLINED,
    )


@transaction.atomic
def order_withdraw_changes(*, order: Order, actor: User, note: str = "") -> Order:
    """The proposer takes the proposal back."""
    return _close_proposal(
        order=order,
        actor=actor,
        note=note,
        action="withdraw_changes",
        state=ContractVersion.State.WITHDRAWN,
    )


def _close_proposal(*, order: Order, actor: User, note: str, action: str, state: str) -> Order:
    order = order_lock(order)
    row, party = order_check(order, action, actor)
    version = _pending_version(order)
    version.state = state
    version.decided_at = clock.now()
    version.decided_by = actor
    version.save()
    proposer = order.proposal_pending_from
    order.proposal_pending_from = ""
    if order.status == S.PENDING_CONFIRMATION:
        order.confirmation_due_at = (
            clock.now() + settings.TRADE_ASSURANCE["SUPPLIER_CONFIRMATION_WINDOW"]
        )
    order_move(order, row, party=party, actor=actor, note=note, data={"version": version.number})
    if action == "decline_changes":
        to_tell = order_supplier_staff(order) if proposer == Party.SUPPLIER else order_buyers(order)
        body = note or ""
        if order.status == S.PENDING_CONFIRMATION:
            body += "\nConfirm the order as placed, propose other changes, or it will be cancelled."
        order_tell(
            order, to_tell, f"your proposed changes (version {version.number}) were declined", body
        )
    else:
        to_tell = order_buyers(order) if proposer == Party.SUPPLIER else order_supplier_staff(order)
        order_tell(order, to_tell, f"proposal version {version.number} was withdrawn", note)
    return order


@transaction.atomic
def order_cancel(*, order: Order, actor: User, reason: str = "") -> Order:
    """Either party cancels before any money is held."""
    order = order_lock(order)
    row, party = order_check(order, "cancel", actor)
    order_cancel_apply(
        order, row, party=party, actor=actor, reason=reason or "Cancelled by the " + party
    )
    other = order_supplier_staff(order) if party == Party.BUYER else order_buyers(order)
    order_tell(order, other, "cancelled", reason)
    return order


def order_cancel_apply(
    order: Order, row: Transition, *, party: str, actor: User | None, reason: str
) -> None:
    """Cancel a locked order by a checked row: its timers stop and an open proposal closes."""
    order.cancelled_at = clock.now()
    order.cancel_reason = reason
    order_timers_clear(order)
    order_open_proposal_close(order)
    order_move(order, row, party=party, actor=actor, note=reason, topic="order.cancelled")


def order_open_proposal_close(order: Order) -> None:
    """Withdraw the proposal waiting for an answer, if any (the order is ending or amended)."""
    if order.proposal_pending_from:
        order.versions.filter(state=ContractVersion.State.PROPOSED).update(
            state=ContractVersion.State.WITHDRAWN, decided_at=clock.now()
        )
        order.proposal_pending_from = ""
