"""Every write to an order: placing it, each transition of its lifecycle, and the deadline sweeps.

Each transition service: locks the order (`select_for_update`), checks the transition map in
`orders.transitions` and the actor's party (`InvalidTransition` 409 / `NotAllowed` 403, nothing
changed), applies the change, writes an `OrderEvent`, publishes a domain event to both
organisations, notifies the party that must act next, and feeds the supplier's order record.
Money moves only through `payments.services`, with idempotency keys derived from the order and
the transition ("order:<id>:release:completion"), so a retried call never moves money twice.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from orders.models import (
    ContractLineItem,
    ContractVersion,
    Coverage,
    Incoterm,
    Order,
    OrderEvent,
    OrderRating,
    OrderStatus,
    Party,
    Shipment,
    ShipmentDocument,
    ShippingMethod,
)
from orders.transitions import (
    BACK_TO_PRIOR,
    PAID_NOT_SHIPPED,
    Transition,
    party_refusal,
    transitions_from,
)
from suppliers.models import Product, Supplier
from tradeassure.core import clock
from tradeassure.core.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotAllowed,
    Unprocessable,
    ValidationFailed,
)
from tradeassure.core.money import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    CurrencyError,
    check_currency,
    format_money,
    is_exact,
    round_money,
)
from tradeassure.platform.events import event_publish, notify
from tradeassure.platform.models import SystemAlert

logger = logging.getLogger(__name__)
S = OrderStatus

DUE_FIELDS = (
    "confirmation_due_at",
    "payment_due_at",
    "shipment_due_at",
    "receipt_due_at",
    "completion_due_at",
)
# The largest amount a money column holds (14 digits, 2 after the point), and quantity likewise.
MAX_AMOUNT = Decimal(10) ** (AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES)
MAX_QUANTITY = Decimal(10) ** 9
MONEY_TERMS = ("currency", "coverage", "shipping_fee", "initial_payment_amount")
MONEY_ITEM_TERMS = ("product_id", "quantity", "unit", "unit_price")


def _rules() -> dict:
    return settings.TRADE_ASSURANCE


# ---------------------------------------------------------------------------------------------
# Contract terms: what a buyer submits, a party proposes, or a dispute agrees.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItemTerms:
    description: str
    quality_requirements: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    specifications: str = ""
    product_id: int | None = None


@dataclass(frozen=True)
class ContractTerms:
    currency: str
    coverage: str
    items: Sequence[LineItemTerms]
    shipment_deadline: datetime
    incoterm: str
    destination: str
    shipping_method: str
    shipping_fee: Decimal
    initial_payment_amount: Decimal
    packaging: str = ""
    customisation: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))


@dataclass
class ContractTotals:
    line_totals: list[Decimal] = field(default_factory=list)
    subtotal: Decimal = Decimal(0)
    shipping_fee: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    initial_payment_amount: Decimal = Decimal(0)
    balance_amount: Decimal = Decimal(0)


def contract_totals(*, terms: ContractTerms) -> ContractTotals:
    """Totals are computed from the lines, never typed: line = quantity x unit price, rounded."""
    currency = terms.currency
    line_totals = [round_money(item.quantity * item.unit_price, currency) for item in terms.items]
    subtotal = sum(line_totals, Decimal(0))
    shipping_fee = round_money(terms.shipping_fee, currency)
    total = round_money(subtotal + shipping_fee, currency)
    initial = round_money(terms.initial_payment_amount, currency)
    return ContractTotals(
        line_totals=line_totals,
        subtotal=round_money(subtotal, currency),
        shipping_fee=shipping_fee,
        total=total,
        initial_payment_amount=initial,
        balance_amount=round_money(total - initial, currency),
    )


def _number_ok(value: object, limit: Decimal) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and abs(value) < limit


def _amount_ok(value: object, currency: str, *, allow_zero: bool = False) -> bool:
    """A finite Decimal that fits a money column and the currency's minor unit."""
    if not _number_ok(value, MAX_AMOUNT) or value < 0 or (value == 0 and not allow_zero):
        return False
    return is_exact(value, currency)


def contract_terms_validate(
    *, supplier: Supplier, terms: ContractTerms, check_deadline: bool = True
) -> ContractTotals:
    """Check a contract against the product's rules; raise ValidationFailed listing every problem."""
    errors: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    try:
        currency = check_currency(terms.currency)
    except CurrencyError:
        add("currency", "Choose one of the supported currencies.")
        raise ValidationFailed("The contract is not valid.", fields=errors) from None
    if terms.coverage not in Coverage.values:
        add("coverage", "Choose pre-shipment or post-delivery coverage.")
    if terms.incoterm not in Incoterm.values:
        add("incoterm", "Choose an Incoterm.")
    if terms.shipping_method not in ShippingMethod.values:
        add("shipping_method", "Choose a shipping method.")
    if not terms.destination.strip():
        add("destination", "Say where the goods go (port or address).")
    if not _amount_ok(terms.shipping_fee, currency, allow_zero=True):
        add("shipping_fee", f"Enter a shipping fee of 0 or more, in whole {currency} minor units.")
    if not terms.items:
        add("items", "Add at least one line item.")
    product_ids = [item.product_id for item in terms.items if item.product_id]
    products = {
        product.pk: product
        for product in Product.objects.filter(pk__in=product_ids, supplier=supplier)
    }
    for position, item in enumerate(terms.items, start=1):
        prefix = f"Line {position}: "
        if not item.description.strip():
            add("items", prefix + "describe the goods.")
        if not item.quality_requirements.strip():
            add(
                "items",
                prefix + "quality requirements are required for protection (what can be measured).",
            )
        if not _number_ok(item.quantity, MAX_QUANTITY) or item.quantity <= 0:
            add("items", prefix + "the quantity must be more than 0 (and under a billion).")
            item = replace(item, quantity=None)
        if not item.unit.strip():
            add("items", prefix + "give the unit (pcs, kg, m…).")
        if not _number_ok(item.unit_price, MAX_AMOUNT) or item.unit_price <= 0:
            add("items", prefix + "the unit price must be more than 0.")
        elif not is_exact(item.unit_price, currency):
            add(
                "items",
                prefix
                + f"{currency} prices have no smaller unit than {currency} {round_money(Decimal(1), currency)}.",
            )
        if item.product_id:
            product = products.get(item.product_id)
            if product is None:
                add("items", prefix + "that product is not in this supplier's catalogue.")
            elif item.quantity and item.quantity < product.minimum_order_quantity:
                add(
                    "items",
                    prefix
                    + f"the minimum order for {product.name} is {product.minimum_order_quantity} {product.unit}.",
                )
    if check_deadline:
        now = clock.now()
        latest = now + _rules()["MAX_SHIPMENT_DEADLINE_AHEAD"]
        if terms.shipment_deadline <= now:
            add("shipment_deadline", "The shipment deadline must be in the future.")
        elif terms.shipment_deadline > latest:
            add(
                "shipment_deadline",
                f"The shipment deadline may be at most {_rules()['MAX_SHIPMENT_DEADLINE_AHEAD'].days} days ahead.",
            )
    if errors:
        raise ValidationFailed("The contract is not valid.", fields=errors)
    totals = contract_totals(terms=terms)
    if totals.total >= MAX_AMOUNT:
        add(
            "items",
            f"The order total is too large for one order ({format_money(totals.total, currency)}).",
        )
    elif (
        not _amount_ok(terms.initial_payment_amount, currency) or terms.initial_payment_amount <= 0
    ):
        add("initial_payment_amount", "The initial payment must be more than 0.")
    elif totals.initial_payment_amount > totals.total:
        add(
            "initial_payment_amount",
            f"The initial payment cannot exceed the order total ({format_money(totals.total, currency)}).",
        )
    if errors:
        raise ValidationFailed("The contract is not valid.", fields=errors)
    return totals


def _version_create(
    *,
    order: Order,
    terms: ContractTerms,
    totals: ContractTotals,
    state: str,
    party: str,
    actor: User | None,
    note: str,
) -> ContractVersion:
    now = clock.now()
    last = order.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = ContractVersion.objects.create(
        order=order,
        number=last + 1,
        state=state,
        proposed_by_party=party,
        proposed_by=actor,
        proposal_note=note,
        created_at=now,
        decided_at=now if state == ContractVersion.State.ACCEPTED else None,
        decided_by=actor if state == ContractVersion.State.ACCEPTED else None,
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
    ContractLineItem.objects.bulk_create(
        ContractLineItem(
            version=version,
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
    )
    return version


def _adopt_version(order: Order, version: ContractVersion) -> None:
    """Make a version the contract in force: copy its terms onto the order row."""
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


def contract_terms_of(version: ContractVersion) -> ContractTerms:
    """The terms of a stored version, e.g. to prefill a proposal."""
    return ContractTerms(
        currency=version.currency,
        coverage=version.coverage,
        items=[
            LineItemTerms(
                description=item.description,
                quality_requirements=item.quality_requirements,
                quantity=item.quantity,
                unit=item.unit,
                unit_price=item.unit_price,
                specifications=item.specifications,
                product_id=item.product_id,
            )
            for item in version.items.all()
        ],
        shipment_deadline=version.shipment_deadline,
        incoterm=version.incoterm,
        destination=version.destination,
        shipping_method=version.shipping_method,
        shipping_fee=version.shipping_fee,
        initial_payment_amount=version.initial_payment_amount,
        packaging=version.packaging,
        customisation=version.customisation,
    )


def _money_terms_changed(old: ContractTerms, new: ContractTerms) -> list[str]:
    changed = [name for name in MONEY_TERMS if getattr(old, name) != getattr(new, name)]
    if len(old.items) != len(new.items):
        changed.append("line items")
    else:
        for before, after in zip(old.items, new.items, strict=True):
            for name in MONEY_ITEM_TERMS:
                if getattr(before, name) != getattr(after, name):
                    changed.append(f"line item {name.replace('_', ' ')}")
    return sorted(set(changed))


def money_is_held(order: Order) -> bool:
    """From the initial payment's capture on, price, quantities and payment terms are frozen."""
    return order.initial_paid_at is not None


# ---------------------------------------------------------------------------------------------
# The transition engine: lock, check the map and the actor, move, record, tell.
# ---------------------------------------------------------------------------------------------


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


def order_lock_for_update(*, order: Order | int, escrow_first: bool = True) -> Order:
    """For callers (disputes) that lock an order before calling a service that moves money:
    take the escrow lock first, like every orders service does, so no path deadlocks with the
    payments capture hook (which holds the escrow and then locks the order)."""
    return _lock(order, escrow_first=escrow_first)


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


# ---------------------------------------------------------------------------------------------
# Placing an order and changing its contract.
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def order_terms_check(*, supplier: Supplier, terms: ContractTerms) -> ContractTotals:
    """Everything order_place checks, without placing: for the buyer's review step."""
    from suppliers.services import supplier_assert_can_take_order

    totals = contract_terms_validate(supplier=supplier, terms=terms)
    supplier_assert_can_take_order(supplier=supplier, amount=totals.total, currency=terms.currency)
    return totals


@transaction.atomic
def order_place(
    *,
    buyer: User,
    supplier: Supplier,
    terms: ContractTerms,
    purchase_order_number: str = "",
    note: str = "",
) -> Order:
    """The buyer submits the contract (version 1); the supplier has the confirmation window."""
    if not buyer.is_buyer or buyer.organisation_id is None:
        raise NotAllowed("Only buyers can place orders.", code="not_a_buyer")
    totals = contract_terms_validate(supplier=supplier, terms=terms)
    from suppliers.services import supplier_assert_can_take_order

    supplier_assert_can_take_order(supplier=supplier, amount=totals.total, currency=terms.currency)
    now = clock.now()
    order = Order.objects.create(
        buyer_organisation_id=buyer.organisation_id,
        buyer=buyer,
        supplier=supplier,
        purchase_order_number=purchase_order_number.strip()[:40],
        status=S.PENDING_CONFIRMATION,
        currency=terms.currency,
        coverage=terms.coverage,
        subtotal=totals.subtotal,
        shipping_fee=totals.shipping_fee,
        total=totals.total,
        initial_payment_amount=totals.initial_payment_amount,
        balance_amount=totals.balance_amount,
        shipment_deadline=terms.shipment_deadline,
        placed_at=now,
        confirmation_due_at=now + _rules()["SUPPLIER_CONFIRMATION_WINDOW"],
    )
    version = _version_create(
        order=order,
        terms=terms,
        totals=totals,
        state=ContractVersion.State.ACCEPTED,
        party=Party.BUYER,
        actor=buyer,
        note=note,
    )
    _adopt_version(order, version)
    order.save()
    order = _lock(order)
    row = transitions_from("place", "")[0]
    order.status = ""  # the order did not exist before: the event reads "" → pending
    _move(
        order,
        row,
        party=Party.BUYER,
        actor=buyer,
        note=note,
        data={"version": 1},
        topic="order.placed",
    )
    _tell(
        order,
        _suppliers(order),
        "new order to confirm",
        f"{buyer.organisation} placed an order for {format_money(order.total, order.currency)}. "
        f"Confirm it or propose changes by {order.confirmation_due_at:%Y-%m-%d %H:%M} UTC, "
        "or it is cancelled automatically.",
    )
    return order


@transaction.atomic
def order_confirm(*, order: Order, actor: User, note: str = "") -> Order:
    """The supplier accepts the contract as it stands; the buyer now has the payment window."""
    from suppliers.services import supplier_assert_can_take_order

    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "confirm", party)
    # The supplier's exposure may have grown since the order was placed: it must still fit.
    supplier_assert_can_take_order(
        supplier=order.supplier,
        amount=order.total,
        currency=order.currency,
        exclude_order_reference=order.escrow_reference,
    )
    _start_payment_window(order)
    _move(order, row, party=party, actor=actor, note=note, topic="order.confirmed")
    _tell_confirmed(order)
    return order


def _start_payment_window(order: Order) -> None:
    from payments.services import escrow_open

    now = clock.now()
    order.confirmed_at = now
    order.confirmation_due_at = None
    order.payment_due_at = now + _rules()["INITIAL_PAYMENT_WINDOW"]
    order.shipment_due_at = order.shipment_deadline
    escrow_open(
        escrow_reference=order.escrow_reference,
        currency=order.currency,
        buyer_organisation=order.buyer_organisation,
        supplier_organisation=order.supplier.organisation,
        description=f"{order.reference} — {order.summary}"[:200],
    )


def _tell_confirmed(order: Order) -> None:
    _tell(
        order,
        _buyers(order),
        "confirmed — pay the initial payment",
        f"{order.supplier} confirmed your order. Pay the initial payment of "
        f"{format_money(order.initial_payment_amount, order.currency)} by "
        f"{order.payment_due_at:%Y-%m-%d} or the order is cancelled automatically. "
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
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "propose_changes", party)
    current = contract_terms_of(order.current_version)
    if money_is_held(order):
        changed = _money_terms_changed(current, terms)
        if changed:
            raise Unprocessable(
                "Money is held for this order, so its price, quantities and payment terms can "
                f"no longer change (you changed: {', '.join(changed)}). Open a dispute to agree "
                "new money terms.",
                code="money_terms_frozen",
                fields={"__all__": [f"Frozen: {', '.join(changed)}"]},
            )
    if terms == current:
        raise ValidationFailed("The proposal changes nothing.", code="no_changes")
    deadline_changed = terms.shipment_deadline != current.shipment_deadline
    totals = contract_terms_validate(
        supplier=order.supplier, terms=terms, check_deadline=deadline_changed
    )
    version = _version_create(
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
        order.confirmation_due_at = clock.now() + _rules()["SUPPLIER_CONFIRMATION_WINDOW"]
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"version": version.number},
        topic="order.changes_proposed",
    )
    other = _buyers(order) if party == Party.SUPPLIER else _suppliers(order)
    _tell(
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
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "accept_changes", party)
    version = _pending_version(order)
    if money_is_held(order) and _money_terms_changed(
        contract_terms_of(order.current_version), contract_terms_of(version)
    ):
        raise Unprocessable(
            "Money is now held for this order; this proposal changes money terms and can no "
            "longer be accepted.",
            code="money_terms_frozen",
        )
    if version.total > order.total:
        from suppliers.services import supplier_assert_can_take_order

        # A larger order must still fit the supplier's limit (this order's old amount aside).
        supplier_assert_can_take_order(
            supplier=order.supplier,
            amount=version.total,
            currency=version.currency,
            exclude_order_reference=order.escrow_reference,
        )
    now = clock.now()
    previous = order.current_version
    version.state = ContractVersion.State.ACCEPTED
    version.decided_at = now
    version.decided_by = actor
    version.save()
    order.proposal_pending_from = ""
    was_pending = order.status == S.PENDING_CONFIRMATION
    _adopt_version(order, version)
    if was_pending:
        _start_payment_window(order)
    _move(
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
        _tell(order, _suppliers(order), f"your changes were accepted (version {version.number})")
    else:
        other = _buyers(order) if party == Party.SUPPLIER else _suppliers(order)
        _tell(order, other, f"your proposed change was accepted (version {version.number})")
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
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, action, party)
    version = _pending_version(order)
    version.state = state
    version.decided_at = clock.now()
    version.decided_by = actor
    version.save()
    proposer = order.proposal_pending_from
    order.proposal_pending_from = ""
    if order.status == S.PENDING_CONFIRMATION:
        order.confirmation_due_at = clock.now() + _rules()["SUPPLIER_CONFIRMATION_WINDOW"]
    _move(order, row, party=party, actor=actor, note=note, data={"version": version.number})
    if action == "decline_changes":
        to_tell = _suppliers(order) if proposer == Party.SUPPLIER else _buyers(order)
        body = note or ""
        if order.status == S.PENDING_CONFIRMATION:
            body += "\nConfirm the order as placed, propose other changes, or it will be cancelled."
        _tell(
            order, to_tell, f"your proposed changes (version {version.number}) were declined", body
        )
    else:
        to_tell = _buyers(order) if proposer == Party.SUPPLIER else _suppliers(order)
        _tell(order, to_tell, f"proposal version {version.number} was withdrawn", note)
    return order


@transaction.atomic
def order_cancel(*, order: Order, actor: User, reason: str = "") -> Order:
    """Either party cancels before any money is held."""
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "cancel", party)
    _cancel(order, row, party=party, actor=actor, reason=reason or "Cancelled by the " + party)
    other = _suppliers(order) if party == Party.BUYER else _buyers(order)
    _tell(order, other, "cancelled", reason)
    return order


def _cancel(order: Order, row: Transition, *, party: str, actor: User | None, reason: str) -> None:
    order.cancelled_at = clock.now()
    order.cancel_reason = reason
    _clear_timers(order)
    _close_open_proposal(order)
    _move(order, row, party=party, actor=actor, note=reason, topic="order.cancelled")


def _close_open_proposal(order: Order) -> None:
    if order.proposal_pending_from:
        order.versions.filter(state=ContractVersion.State.PROPOSED).update(
            state=ContractVersion.State.WITHDRAWN, decided_at=clock.now()
        )
        order.proposal_pending_from = ""


# ---------------------------------------------------------------------------------------------
# Payments.
# ---------------------------------------------------------------------------------------------


PAYMENT_STEPS = {
    # purpose: (status it is due in, amount field, transition applied on capture)
    "initial": (S.AWAITING_PAYMENT, "initial_payment_amount", "initial_payment_captured"),
    "balance": (S.AWAITING_BALANCE, "balance_amount", "balance_payment_captured"),
}


def order_payment_due(order: Order) -> tuple[str, Decimal] | None:
    """The payment the buyer owes now, as (purpose, amount), or None."""
    for purpose, (status, amount_field, _action) in PAYMENT_STEPS.items():
        if order.status == status:
            return purpose, getattr(order, amount_field)
    return None


def order_payment_start(*, order: Order, actor: User, method: str, return_url: str = "") -> Any:
    """Start the payment the buyer owes now (initial or balance); returns the payments' Payment.

    Idempotent per order, purpose, contract version and method: pressing "Pay" twice opens the
    same payment.
    """
    from payments.services import payment_start

    with transaction.atomic():
        order = _lock(order)
        party = party_of(order=order, user=actor)
        if party != Party.BUYER:
            raise NotAllowed("Only the buyer pays for an order.", code="not_allowed")
        due = order_payment_due(order)
        if due is None:
            raise InvalidTransition(
                f"Nothing is due while the order is {_status_label(order.status).lower()}.",
                code="invalid_transition",
            )
        purpose, amount = due
        return payment_start(
            escrow_reference=order.escrow_reference,
            purpose=purpose,
            amount=amount,
            currency=order.currency,
            method=method,
            payer_organisation=order.buyer_organisation,
            idempotency_key=_key(order, "pay", purpose, f"v{order.current_version.number}", method),
            return_url=return_url or order.get_absolute_url(),
        )


def order_payment_captured(*, payment: Any) -> None:
    """PAYMENT_CAPTURED_HOOKS entry: money arrived for an order's escrow.

    Runs inside the payments' capture transaction and never raises for money that has arrived:
    if the order is waiting for exactly this payment it moves on; otherwise the money goes back
    to the buyer (refund) and the timeline says why. Called twice for one payment: no effect.
    """
    reference = str(getattr(payment, "escrow_reference", "") or payment.escrow.reference)
    purpose = getattr(payment, "purpose", "")
    if not reference.startswith("order:") or purpose not in PAYMENT_STEPS:
        return
    try:
        order_id = int(reference.split(":", 1)[1])
    except ValueError:
        return
    with transaction.atomic():
        order = Order.objects.filter(pk=order_id).first()
        if order is None:
            return
        order = _lock(order)
        if OrderEvent.objects.filter(order=order, data__payment_id=payment.pk).exists():
            return
        status, amount_field, action = PAYMENT_STEPS[purpose]
        matches = (
            payment.amount == getattr(order, amount_field) and payment.currency == order.currency
        )
        data = {
            "payment_id": payment.pk,
            "purpose": purpose,
            "amount": str(payment.amount),
            "currency": payment.currency,
        }
        if matches and order.status == status:
            row = transitions_from(action, order.status)[0]
            _apply_capture(order, purpose)
            _move(order, row, party=Party.SYSTEM, actor=None, data=data, topic=f"order.{action}")
            _tell_captured(order, purpose)
            return
        if matches and order.status == S.DISPUTED and order.status_before_dispute == status:
            # Money that was due arrived while a dispute is open: take it, and resume the
            # order after the dispute as if it had arrived before.
            row = transitions_from(action, status)[0]
            _apply_capture(order, purpose)
            order.paused_timers.pop("payment_due_at", None)
            order.status_before_dispute = row.target
            order.save()
            _record_event(
                order,
                action=action,
                party=Party.SYSTEM,
                actor=None,
                note="Payment received while the dispute is open.",
                data=data,
            )
            return
        _return_payment(order, payment, data)


def _apply_capture(order: Order, purpose: str) -> None:
    now = clock.now()
    if purpose == "initial":
        order.initial_paid_at = now
        order.payment_due_at = None
    else:
        order.balance_paid_at = now


def _tell_captured(order: Order, purpose: str) -> None:
    if purpose == "initial":
        _tell(
            order,
            _suppliers(order),
            "initial payment held in escrow — start production",
            f"Ship by {order.shipment_deadline:%Y-%m-%d %H:%M} UTC.",
        )
    else:
        _tell(order, _suppliers(order), "balance paid — ship the goods and record the shipment")


def _return_payment(order: Order, payment: Any, data: dict) -> None:
    from payments.selectors import escrow_summary
    from payments.services import escrow_freeze, escrow_unfreeze

    reason = "The order was not waiting for this payment (amount or status changed)."
    frozen = escrow_summary(escrow_reference=order.escrow_reference).frozen
    if frozen:
        escrow_unfreeze(escrow_reference=order.escrow_reference)
    _refund(
        order,
        amount=payment.amount,
        key=_key(order, "refund", "payment", str(payment.pk)),
        reason=reason,
    )
    if frozen:
        escrow_freeze(escrow_reference=order.escrow_reference)
    _record_event(
        order,
        action="payment_returned",
        party=Party.SYSTEM,
        actor=None,
        note=f"{format_money(payment.amount, payment.currency)} returned to the buyer. {reason}",
        data=data,
    )
    _tell(
        order,
        _buyers(order),
        "a payment was returned to you",
        f"{format_money(payment.amount, payment.currency)}: {reason}",
    )


@transaction.atomic
def order_request_balance(*, order: Order, actor: User, note: str = "") -> Order:
    """Production is done; the supplier asks for the balance before shipping."""
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "request_balance", party)
    order.balance_requested_at = clock.now()
    _move(order, row, party=party, actor=actor, note=note, topic="order.balance_requested")
    _tell(
        order,
        _buyers(order),
        "pay the balance",
        f"{order.supplier} finished production and asks for the balance of "
        f"{format_money(order.balance_amount, order.currency)}. It is held in escrow too.",
    )
    return order


@transaction.atomic
def order_mark_ready(*, order: Order, actor: User, note: str = "") -> Order:
    """Production is done and no balance is due: the goods are ready to ship."""
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "mark_ready", party)
    _move(order, row, party=party, actor=actor, note=note, topic="order.ready_to_ship")
    _tell(order, _buyers(order), "goods ready to ship", note)
    return order


# ---------------------------------------------------------------------------------------------
# Shipment and the shipment deadline.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentDocumentUpload:
    kind: str
    file: Any  # an UploadedFile


REQUIRED_SHIPMENT_DOCUMENTS = (
    ShipmentDocument.Kind.COMMERCIAL_INVOICE,
    ShipmentDocument.Kind.BILL_OF_LADING,
    ShipmentDocument.Kind.PACKING_LIST,
)


def order_ship(
    *,
    order: Order,
    actor: User,
    carrier: str,
    tracking_number: str,
    shipped_on: date,
    documents: Sequence[ShipmentDocumentUpload],
    note: str = "",
) -> Order:
    """The supplier records the shipment with its documents; the receipt window starts.

    Pre-shipment coverage releases the held funds to the supplier now.
    """
    from tradeassure.core.uploads import DOCUMENT_KINDS, upload_delete, upload_store

    errors: dict[str, list[str]] = {}
    if not carrier.strip():
        errors.setdefault("carrier", []).append("Name the carrier.")
    if not tracking_number.strip():
        errors.setdefault("tracking_number", []).append("Give the tracking number.")
    today = clock.now().date()
    if shipped_on > today:
        errors.setdefault("shipped_on", []).append("The ship date cannot be in the future.")
    kinds = {document.kind for document in documents}
    for kind in REQUIRED_SHIPMENT_DOCUMENTS:
        if kind not in kinds:
            errors.setdefault(kind, []).append(
                f"Upload the {ShipmentDocument.Kind(kind).label.lower()}."
            )
    if errors:
        raise ValidationFailed("The shipment is not complete.", fields=errors)
    stored = []
    try:
        with transaction.atomic():
            order = _lock(order, escrow_first=True)
            party = party_of(order=order, user=actor)
            row = _check(order, "ship", party)
            if order.confirmed_at and shipped_on < order.confirmed_at.date():
                raise ValidationFailed(
                    "The ship date is before the order was confirmed.",
                    fields={"shipped_on": ["The ship date is before the order was confirmed."]},
                )
            previous = order.shipment  # set when this ships a replacement agreed in a dispute
            if previous is not None and shipped_on < previous.shipped_on:
                message = "The replacement cannot have shipped before the first shipment."
                raise ValidationFailed(message, fields={"shipped_on": [message]})
            for document in documents:
                try:
                    upload = upload_store(
                        file=document.file,
                        folder=f"orders/{order.pk}/shipment",
                        allowed_kinds=DOCUMENT_KINDS,
                    )
                except ValidationFailed as error:
                    raise ValidationFailed(
                        error.message, code=error.code, fields={document.kind: [error.message]}
                    ) from error
                stored.append((document.kind, upload))
            now = clock.now()
            shipment = Shipment.objects.create(
                order=order,
                replaces=previous,
                carrier=carrier.strip(),
                tracking_number=tracking_number.strip(),
                shipped_on=shipped_on,
                note=note,
                recorded_by=actor,
                recorded_at=now,
            )
            ShipmentDocument.objects.bulk_create(
                ShipmentDocument(
                    shipment=shipment,
                    kind=kind,
                    stored_name=upload.name,
                    original_name=upload.original_name,
                    content_type=upload.content_type,
                    size=upload.size,
                    uploaded_at=now,
                )
                for kind, upload in stored
            )
            order.shipped_at = now
            order.shipment_due_at = None
            order.receipt_due_at = now + _rules()["RECEIPT_CONFIRMATION_WINDOW"]
            released = Decimal(0)
            if order.coverage == Coverage.PRE_SHIPMENT:
                released = _release_all(order, key=_key(order, "release", "shipment"))
            _move(
                order,
                row,
                party=party,
                actor=actor,
                note=note,
                data={
                    "carrier": shipment.carrier,
                    "tracking_number": shipment.tracking_number,
                    "shipped_on": shipped_on.isoformat(),
                    "late": order.shipped_at > order.shipment_deadline,
                    "released": str(released),
                },
                topic="order.shipped",
            )
            _tell(
                order,
                _buyers(order),
                "shipped — confirm receipt when the goods arrive",
                f"{shipment.carrier}, tracking number {shipment.tracking_number}. Confirm receipt "
                f"by {order.receipt_due_at:%Y-%m-%d}; after that receipt is confirmed automatically.",
            )
    except BaseException:
        for _kind, upload in stored:
            upload_delete(name=upload.name)
        raise
    return order


@transaction.atomic
def order_flag_late(*, order: Order) -> bool:
    """System: the shipment deadline passed unshipped. Returns False if nothing was due."""
    order = _lock(order)
    if (
        order.status not in PAID_NOT_SHIPPED
        or order.shipment_due_at is None
        or order.shipment_due_at > clock.now()
    ):
        return False
    row = _check(order, "flag_late", Party.SYSTEM)
    order.is_late = True
    order.late_flagged_at = clock.now()
    order.shipment_due_at = None
    _move(order, row, party=Party.SYSTEM, actor=None, topic="order.shipment_late")
    _tell(
        order,
        _buyers(order),
        "shipment deadline passed — cancel with a full refund or extend",
        "The supplier has not recorded a shipment by the agreed deadline. You may cancel the "
        "order and get your payment back in full, or grant the supplier more time.",
    )
    _tell(
        order,
        _suppliers(order),
        "shipment deadline passed",
        "The buyer may now cancel with a full refund. Ship and record the shipment, or ask the "
        "buyer for an extension.",
    )
    return True


@transaction.atomic
def order_extend_shipment_deadline(
    *, order: Order, actor: User, new_deadline: datetime, note: str = ""
) -> Order:
    """The buyer grants the supplier more time to ship (clears the late flag)."""
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "extend_shipment_deadline", party)
    now = clock.now()
    if new_deadline <= max(now, order.shipment_deadline):
        raise ValidationFailed(
            "The new deadline must be later than the current one and in the future.",
            fields={"new_deadline": ["Choose a later date."]},
        )
    if new_deadline > now + _rules()["MAX_SHIPMENT_DEADLINE_AHEAD"]:
        raise ValidationFailed(
            "The new deadline may be at most "
            f"{_rules()['MAX_SHIPMENT_DEADLINE_AHEAD'].days} days ahead.",
            fields={"new_deadline": ["Too far ahead."]},
        )
    previous = order.shipment_deadline
    order.shipment_deadline = new_deadline
    order.shipment_due_at = new_deadline
    order.is_late = False
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"previous_deadline": previous.isoformat(), "new_deadline": new_deadline.isoformat()},
        topic="order.shipment_deadline_extended",
    )
    _tell(
        order,
        _suppliers(order),
        f"shipment deadline extended to {new_deadline:%Y-%m-%d}",
        note,
    )
    return order


@transaction.atomic
def order_cancel_late_with_refund(*, order: Order, actor: User, reason: str = "") -> Order:
    """The buyer cancels a late order and gets every held amount back, without supplier consent."""
    order = _lock(order, escrow_first=True)
    party = party_of(order=order, user=actor)
    row = _check(order, "cancel_late_with_refund", party)
    refunded = _refund(
        order,
        amount=_held(order),
        key=_key(order, "refund", "late_cancellation"),
        reason="Shipment deadline missed; cancelled by the buyer.",
    )
    now = clock.now()
    order.cancelled_at = now
    order.refunded_at = now
    order.cancel_reason = reason or "The supplier missed the shipment deadline."
    _clear_timers(order)
    _close_open_proposal(order)
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=order.cancel_reason,
        data={"refunded": str(refunded)},
        topic="order.refunded",
    )
    _tell(
        order,
        _suppliers(order),
        "cancelled by the buyer: shipment deadline missed",
        f"{format_money(refunded, order.currency)} was refunded to the buyer.",
    )
    return order


# ---------------------------------------------------------------------------------------------
# Receipt, acceptance, completion, rating.
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def order_confirm_receipt(*, order: Order, actor: User, note: str = "") -> Order:
    """The buyer has the goods. Post-delivery: the claim window starts. Pre-shipment: done."""
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "confirm_receipt", party)
    _receive(order, row, party=party, actor=actor, note=note)
    return order


@transaction.atomic
def order_auto_confirm_receipt(*, order: Order) -> bool:
    """System: the receipt window ended without confirmation. False if nothing was due."""
    order = _lock(order)
    if (
        order.status != S.SHIPPED
        or order.receipt_due_at is None
        or order.receipt_due_at > clock.now()
    ):
        return False
    row = _check(order, "auto_confirm_receipt", Party.SYSTEM)
    _receive(order, row, party=Party.SYSTEM, actor=None, note="Receipt window ended.")
    return True


def _receive(order: Order, row: Transition, *, party: str, actor: User | None, note: str) -> None:
    now = clock.now()
    order.delivered_at = now
    order.receipt_due_at = None
    if row.target == S.DELIVERED:
        order.completion_due_at = now + _rules()["POST_DELIVERY_CLAIM_WINDOW"]
        _move(order, row, party=party, actor=actor, note=note, topic="order.delivered")
        _tell(
            order,
            _buyers(order),
            "received — accept the goods or open a dispute",
            "Check the goods against the contract. Accept them to release the payment, or open a "
            f"dispute by {order.completion_due_at:%Y-%m-%d}; then the payment is released "
            "automatically.",
        )
        _tell(order, _suppliers(order), "the buyer has the goods (claim window open)")
    else:
        order.completed_at = now
        _move(order, row, party=party, actor=actor, note=note, topic="order.completed")
        _recompute_supplier_metrics(order)
        _tell(order, _buyers(order), "completed — rate your supplier")
        _tell(order, _suppliers(order), "completed: the buyer has the goods")


@transaction.atomic
def order_extend_receipt_window(*, order: Order, actor: User, note: str = "") -> Order:
    """Either party may move the receipt deadline by 15 days, once each."""
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "extend_receipt_window", party)
    order.receipt_due_at = (order.receipt_due_at or clock.now()) + _rules()["RECEIPT_EXTENSION"]
    if party == Party.BUYER:
        order.receipt_extended_by_buyer = True
    else:
        order.receipt_extended_by_supplier = True
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"receipt_due_at": order.receipt_due_at.isoformat()},
        topic="order.receipt_window_extended",
    )
    other = _suppliers(order) if party == Party.BUYER else _buyers(order)
    _tell(order, other, f"receipt window extended to {order.receipt_due_at:%Y-%m-%d}", note)
    return order


@transaction.atomic
def order_accept_goods(*, order: Order, actor: User, note: str = "") -> Order:
    """The buyer accepts the goods (post-delivery): the order completes and funds are released."""
    order = _lock(order, escrow_first=True)
    party = party_of(order=order, user=actor)
    row = _check(order, "accept_goods", party)
    _complete(order, row, party=party, actor=actor, note=note)
    return order


@transaction.atomic
def order_complete_after_window(*, order: Order) -> bool:
    """System: the post-delivery window closed with no dispute. False if nothing was due."""
    order = _lock(order, escrow_first=True)
    if (
        order.status != S.DELIVERED
        or order.completion_due_at is None
        or order.completion_due_at > clock.now()
    ):
        return False
    row = _check(order, "complete_after_window", Party.SYSTEM)
    _complete(order, row, party=Party.SYSTEM, actor=None, note="Claim window ended.")
    return True


def _complete(order: Order, row: Transition, *, party: str, actor: User | None, note: str) -> None:
    released = _release_all(order, key=_key(order, "release", "completion"))
    order.completed_at = clock.now()
    order.completion_due_at = None
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"released": str(released)},
        topic="order.completed",
    )
    _recompute_supplier_metrics(order)
    _tell(
        order,
        _suppliers(order),
        "completed — funds released",
        f"{format_money(released, order.currency)} released (the fee is deducted on release).",
    )
    _tell(order, _buyers(order), "completed — rate your supplier")


@transaction.atomic
def order_rate(*, order: Order, actor: User, score: int, comment: str = "") -> OrderRating:
    """The buyer rates a completed order 1 to 5 (feeds the supplier's metrics)."""
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "rate", party)
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationFailed(
            "Rate from 1 to 5 stars.", fields={"score": ["Rate from 1 to 5 stars."]}
        )
    rating = OrderRating.objects.create(
        order=order, score=score, comment=comment, rated_by=actor, created_at=clock.now()
    )
    order.rating_score = score
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=comment,
        data={"score": score},
        topic="order.rated",
    )
    _recompute_supplier_metrics(order)
    _tell(order, _suppliers(order), f"the buyer rated this order {score}/5", comment)
    return rating


# ---------------------------------------------------------------------------------------------
# Disputes hand-off (the disputes app calls these inside its own transaction).
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def order_dispute_opened(*, order: Order, actor: User | None, note: str = "") -> Order:
    """A dispute was opened: status → disputed, timers paused, escrow frozen.

    The status before is remembered (`status_before_dispute`); each running deadline is stored
    as the time it had left (`paused_timers`) and cleared, so no sweep fires while disputed.
    """
    from payments.services import escrow_freeze

    order = _lock(order, escrow_first=True)
    party = party_of(order=order, user=actor)
    row = _check(order, "dispute_opened", party)
    now = clock.now()
    paused = {}
    for name in DUE_FIELDS:
        due = getattr(order, name)
        if due is not None:
            paused[name] = max(0, int((due - now).total_seconds()))
            setattr(order, name, None)
    order.paused_timers = paused
    order.status_before_dispute = order.status
    order.disputed_at = now
    order.ever_disputed = True
    escrow_freeze(escrow_reference=order.escrow_reference)
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"paused_timers": paused},
        topic="order.disputed",
    )
    return order


order_freeze_for_dispute = order_dispute_opened  # the name BRIEF.md announced


class DisputeOutcome:
    RESUME = "resume"  # dispute withdrawn/cancelled/rejected: the order continues as before
    NEW_AGREEMENT = (
        "new_agreement"  # terms amended (see order_contract_amend_by_dispute); continues
    )
    # New agreement with replacement goods (amend first, with the replacement's shipment
    # deadline): money stays held, order back to ready_to_ship, the deadline timer runs.
    REPLACEMENT = "replacement"
    RELEASE = "release"  # release everything held to the supplier; order completed
    PARTIAL_REFUND = "partial_refund"  # refund refund_amount, release the rest; order completed
    FULL_REFUND = "full_refund"  # refund everything held; order refunded

    ALL = (RESUME, NEW_AGREEMENT, REPLACEMENT, RELEASE, PARTIAL_REFUND, FULL_REFUND)


@transaction.atomic
def order_dispute_resolved(
    *,
    order: Order,
    actor: User | None,
    outcome: str,
    dispute_reference: str,
    refund_amount: Decimal = Decimal(0),
    supplier_at_fault: bool = False,
    note: str = "",
) -> Order:
    """Execute a dispute's outcome on the order, in the caller's transaction.

    Unfreezes the escrow, moves the money (keys "order:<id>:dispute:<ref>:refund|release"),
    and sets the status: resume/new_agreement → the status before the dispute, with paused
    timers resumed (due = now + time that was left); replacement → ready_to_ship with the money
    still held and the (amended) shipment deadline running, the receipt and claim windows to
    restart when the replacement ships; release/partial_refund → completed; full_refund →
    refunded. `refund_amount` applies to partial_refund, new_agreement and replacement.
    """
    from payments.services import escrow_unfreeze

    if outcome not in DisputeOutcome.ALL:
        raise ValidationFailed(f"Unknown dispute outcome {outcome!r}.", code="unknown_outcome")
    order = _lock(order, escrow_first=True)
    party = party_of(order=order, user=actor)
    action = {
        DisputeOutcome.RESUME: "dispute_resolved_resume",
        DisputeOutcome.NEW_AGREEMENT: "dispute_resolved_resume",
        DisputeOutcome.REPLACEMENT: "dispute_resolved_replacement",
        DisputeOutcome.RELEASE: "dispute_resolved_complete",
        DisputeOutcome.PARTIAL_REFUND: "dispute_resolved_complete",
        DisputeOutcome.FULL_REFUND: "dispute_resolved_refund",
    }[outcome]
    row = _check(order, action, party)
    refund_amount = Decimal(refund_amount or 0)
    if refund_amount < 0 or not is_exact(refund_amount, order.currency):
        raise ValidationFailed("The refund amount is not a valid amount.", code="bad_amount")
    if outcome == DisputeOutcome.REPLACEMENT and order.shipment_deadline <= clock.now():
        raise Unprocessable(
            "A replacement needs a shipment deadline in the future: agree the date by which "
            "the supplier ships it.",
            code="replacement_deadline_missing",
        )
    escrow_unfreeze(escrow_reference=order.escrow_reference)
    held = _held(order)
    refunded = released = Decimal(0)
    reason = f"Dispute {dispute_reference}: {outcome.replace('_', ' ')}"
    if outcome == DisputeOutcome.FULL_REFUND:
        if held <= 0:
            raise Unprocessable(
                "Nothing is held in escrow for this order, so it cannot be refunded in full.",
                code="nothing_held",
            )
        refunded = _refund(
            order,
            amount=held,
            key=_key(order, "dispute", dispute_reference, "refund"),
            reason=reason,
        )
    elif outcome in (
        DisputeOutcome.PARTIAL_REFUND,
        DisputeOutcome.NEW_AGREEMENT,
        DisputeOutcome.REPLACEMENT,
    ):
        if refund_amount > held:
            raise Conflict(
                f"Only {format_money(held, order.currency)} is held; cannot refund "
                f"{format_money(refund_amount, order.currency)}.",
                code="insufficient_escrow",
            )
        refunded = _refund(
            order,
            amount=refund_amount,
            key=_key(order, "dispute", dispute_reference, "refund"),
            reason=reason,
        )
    if outcome in (DisputeOutcome.RELEASE, DisputeOutcome.PARTIAL_REFUND):
        released = _release_all(order, key=_key(order, "dispute", dispute_reference, "release"))

    now = clock.now()
    target = row.target_for(order)
    replaced: dict[str, Any] = {}
    is_replacement = outcome == DisputeOutcome.REPLACEMENT
    if is_replacement:
        # The goods shipped are to be replaced: the old windows end (they restart when the
        # replacement ships) and the shipment deadline of the new agreement runs.
        previous = order.shipment
        if previous is not None:
            replaced = {
                "id": previous.pk,
                "carrier": previous.carrier,
                "tracking_number": previous.tracking_number,
                "shipped_on": previous.shipped_on.isoformat(),
            }
        _clear_timers(order)
        order.shipment_due_at = order.shipment_deadline
        order.is_late = False
        order.late_flagged_at = None
        order.shipped_at = None
        order.delivered_at = None
        order.receipt_extended_by_buyer = False
        order.receipt_extended_by_supplier = False
    elif row.target == BACK_TO_PRIOR:
        for name, seconds in (order.paused_timers or {}).items():
            due = now + timedelta(seconds=seconds)
            setattr(order, name, due)
            if name == "shipment_due_at":
                order.shipment_deadline = due
    else:
        _clear_timers(order)
        if target == S.COMPLETED:
            order.completed_at = now
        else:
            order.refunded_at = now
            order.cancelled_at = now
            order.cancel_reason = reason
    order.paused_timers = {}
    order.status_before_dispute = ""
    order.dispute_lost = order.dispute_lost or supplier_at_fault
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={
            "dispute": dispute_reference,
            "outcome": outcome,
            "refunded": str(refunded),
            "released": str(released),
            "supplier_at_fault": supplier_at_fault,
            **({"replaced_shipment": replaced} if replaced else {}),
        },
        topic="order.dispute_resolved",
        to_status=target,
    )
    if target in (S.COMPLETED, S.REFUNDED):
        _recompute_supplier_metrics(order)
    for users in (_buyers(order), _suppliers(order)):
        _tell(
            order,
            users,
            f"dispute resolved — order {_status_label(target).lower()}",
            note,
        )
    if is_replacement:
        _tell(
            order,
            _suppliers(order),
            f"ship the replacement by {order.shipment_deadline:%Y-%m-%d}",
            "Record the replacement shipment with its documents on the order page. The payment "
            "stays in escrow until the buyer has the replacement and accepts it.",
        )
    return order


@transaction.atomic
def order_contract_amend_by_dispute(
    *,
    order: Order,
    actor: User | None,
    terms: ContractTerms,
    dispute_reference: str,
    note: str = "",
) -> ContractVersion:
    """A dispute's new agreement becomes the contract in force (money terms may change here).

    Call while the order is disputed, before `order_dispute_resolved(outcome="new_agreement")`.
    The version is accepted at once (both parties agreed in the dispute, or a mediator decided).
    """
    order = _lock(order)
    party = party_of(order=order, user=actor)
    row = _check(order, "contract_amended_by_dispute", party)
    deadline_changed = terms.shipment_deadline != order.current_version.shipment_deadline
    totals = contract_terms_validate(
        supplier=order.supplier, terms=terms, check_deadline=deadline_changed
    )
    _close_open_proposal(order)
    version = _version_create(
        order=order,
        terms=terms,
        totals=totals,
        state=ContractVersion.State.ACCEPTED,
        party=party,
        actor=actor,
        note=note or f"New agreement in dispute {dispute_reference}",
    )
    previous = order.current_version.number
    _adopt_version(order, version)
    if order.status_before_dispute == S.AWAITING_BALANCE and order.balance_amount == 0:
        # The new agreement leaves no balance to pay: resume ready to ship, not waiting for 0.
        order.status_before_dispute = S.READY_TO_SHIP
        order.balance_paid_at = clock.now()
    if deadline_changed and order.status_before_dispute in PAID_NOT_SHIPPED:
        # The new deadline runs once the dispute ends (like every paused timer).
        order.paused_timers["shipment_due_at"] = max(
            0, int((terms.shipment_deadline - clock.now()).total_seconds())
        )
        order.is_late = False
    _move(
        order,
        row,
        party=party,
        actor=actor,
        note=note,
        data={
            "version": version.number,
            "previous_version": previous,
            "dispute": dispute_reference,
        },
        topic="order.contract_amended",
    )
    return version


# ---------------------------------------------------------------------------------------------
# Deadline sweeps (Celery beat, every 60 s): batched, idempotent, safe when run twice at once.
# ---------------------------------------------------------------------------------------------


def _sweep(
    *, due_field: str, statuses: Sequence[str], apply: Callable[[Order], bool], name: str
) -> int:
    """Apply `apply` to every order whose `due_field` has passed, in batches.

    Each batch locks its rows with SKIP LOCKED, so two sweeps at once share the work instead of
    doing it twice; each order is handled in its own savepoint and re-checked under the lock by
    the service, so a repeated sweep (or a crashed worker's retry) finds nothing left to do.
    An order whose service refuses is skipped for this run and reported as a SystemAlert.
    """
    batch_size = _rules()["SWEEP_BATCH_SIZE"]
    done = 0
    failed: set[int] = set()
    while True:
        now = clock.now()
        with transaction.atomic():
            batch = list(
                Order.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status__in=statuses, **{f"{due_field}__lte": now})
                .exclude(pk__in=failed)
                .order_by(due_field, "pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not batch:
                return done
            for order_id in batch:
                try:
                    with transaction.atomic():
                        if apply(Order(pk=order_id)):
                            done += 1
                except Exception as error:
                    # Skipped for this run (the savepoint undid its part); staff are told.
                    failed.add(order_id)
                    logger.exception("%s: order %s failed", name, order_id)
                    message = error.message if isinstance(error, DomainError) else repr(error)
                    SystemAlert.objects.create(
                        source=f"orders.{name}",
                        message=f"Order {order_id}: {message}"[:2000],
                        created_at=clock.now(),
                    )


def _expire(*, order: Order, action: str, due_field: str, status: str, reason: str) -> bool:
    order = _lock(order)
    due = getattr(order, due_field)
    if order.status != status or due is None or due > clock.now():
        return False
    row = _check(order, action, Party.SYSTEM)
    _cancel(order, row, party=Party.SYSTEM, actor=None, reason=reason)
    for users in (_buyers(order), _suppliers(order)):
        _tell(order, users, "cancelled automatically", reason)
    return True


@transaction.atomic
def order_expire_confirmation(*, order: Order) -> bool:
    """System: nobody agreed the contract within the confirmation window. False if not due."""
    return _expire(
        order=order,
        action="expire_confirmation",
        due_field="confirmation_due_at",
        status=S.PENDING_CONFIRMATION,
        reason="The contract was not agreed within the confirmation window.",
    )


@transaction.atomic
def order_expire_payment(*, order: Order) -> bool:
    """System: the initial payment window ended unpaid. False if not due."""
    return _expire(
        order=order,
        action="expire_payment",
        due_field="payment_due_at",
        status=S.AWAITING_PAYMENT,
        reason="The initial payment was not made within the payment window.",
    )


def orders_sweep_confirmation_timeouts() -> int:
    return _sweep(
        due_field="confirmation_due_at",
        statuses=[S.PENDING_CONFIRMATION],
        apply=lambda order: order_expire_confirmation(order=order),
        name="sweep_confirmation_timeouts",
    )


def orders_sweep_payment_timeouts() -> int:
    return _sweep(
        due_field="payment_due_at",
        statuses=[S.AWAITING_PAYMENT],
        apply=lambda order: order_expire_payment(order=order),
        name="sweep_payment_timeouts",
    )


def orders_sweep_shipment_deadlines() -> int:
    return _sweep(
        due_field="shipment_due_at",
        statuses=list(PAID_NOT_SHIPPED),
        apply=lambda order: order_flag_late(order=order),
        name="sweep_shipment_deadlines",
    )


def orders_sweep_receipt_windows() -> int:
    return _sweep(
        due_field="receipt_due_at",
        statuses=[S.SHIPPED],
        apply=lambda order: order_auto_confirm_receipt(order=order),
        name="sweep_receipt_windows",
    )


def orders_sweep_post_delivery_windows() -> int:
    return _sweep(
        due_field="completion_due_at",
        statuses=[S.DELIVERED],
        apply=lambda order: order_complete_after_window(order=order),
        name="sweep_post_delivery_windows",
    )
