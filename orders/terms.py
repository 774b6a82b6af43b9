"""Contract terms: what a buyer submits, a party proposes, or a dispute agrees, and their checks.

Value objects with no lock and no write, so forms, serializers, services and the disputes app
share one definition (`orders.services` re-exports them for old callers)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeGuard

from django.conf import settings

from orders.models import ContractVersion, Coverage, Incoterm, ShippingMethod
from suppliers.models import Product, Supplier
from tradeassure.core import clock
from tradeassure.core.errors import ValidationFailed
from tradeassure.core.money import (
    AMOUNT_DECIMAL_PLACES,
    AMOUNT_MAX_DIGITS,
    MINOR_UNITS,
    CurrencyError,
    check_currency,
    format_money,
    is_exact,
    round_money,
)

# The largest amount a money column holds (14 digits, 2 after the point), and quantity likewise.
MAX_AMOUNT = Decimal(10) ** (AMOUNT_MAX_DIGITS - AMOUNT_DECIMAL_PLACES)
MAX_QUANTITY = Decimal(10) ** 9
MONEY_TERMS = ("currency", "coverage", "shipping_fee", "initial_payment_amount")
MONEY_ITEM_TERMS = ("product_id", "quantity", "unit", "unit_price")


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


def _number_ok(value: object, limit: Decimal) -> TypeGuard[Decimal]:
    """A finite Decimal under `limit` in size; the terms come unchecked from forms and the API."""
    return isinstance(value, Decimal) and value.is_finite() and abs(value) < limit


def decimals_allowed(currency: str) -> str:
    """How precise an amount in this currency may be, for error messages."""
    places = MINOR_UNITS[currency]
    if places == 0:
        return f"{currency} allows 0 decimal places (whole {currency} only)"
    return f"{currency} allows {places} decimal places at most"


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
        if _number_ok(terms.shipping_fee, MAX_AMOUNT) and terms.shipping_fee >= 0:
            add(
                "shipping_fee",
                f"The shipping fee has too many decimals: {decimals_allowed(currency)}.",
            )
        else:
            add("shipping_fee", "Enter a shipping fee of 0 or more.")
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
        quantity_ok = _number_ok(item.quantity, MAX_QUANTITY) and item.quantity > 0
        if not quantity_ok:
            add("items", prefix + "the quantity must be more than 0 (and under a billion).")
        if not item.unit.strip():
            add("items", prefix + "give the unit (pcs, kg, m…).")
        if not _number_ok(item.unit_price, MAX_AMOUNT) or item.unit_price <= 0:
            add("items", prefix + "the unit price must be more than 0.")
        elif not is_exact(item.unit_price, currency):
            add(
                "items",
                prefix + f"the unit price has too many decimals: {decimals_allowed(currency)}.",
            )
        if item.product_id:
            product = products.get(item.product_id)
            if product is None:
                add("items", prefix + "that product is not in this supplier's catalogue.")
            elif quantity_ok and item.quantity < product.minimum_order_quantity:
                add(
                    "items",
                    prefix
                    + f"the minimum order for {product.name} is {product.minimum_order_quantity} {product.unit}.",
                )
    if check_deadline:
        now = clock.now()
        latest = now + settings.TRADE_ASSURANCE["MAX_SHIPMENT_DEADLINE_AHEAD"]
        if terms.shipment_deadline <= now:
            add("shipment_deadline", "The shipment deadline must be in the future.")
        elif terms.shipment_deadline > latest:
            add(
                "shipment_deadline",
                f"The shipment deadline may be at most {settings.TRADE_ASSURANCE['MAX_SHIPMENT_DEADLINE_AHEAD'].days} days ahead.",
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
        not _number_ok(terms.initial_payment_amount, MAX_AMOUNT)
        or terms.initial_payment_amount <= 0
    ):
        add("initial_payment_amount", "The initial payment must be more than 0.")
    elif not is_exact(terms.initial_payment_amount, currency):
        add(
            "initial_payment_amount",
            f"The initial payment has too many decimals: {decimals_allowed(currency)}.",
        )
    elif totals.initial_payment_amount > totals.total:
        add(
            "initial_payment_amount",
            f"The initial payment cannot exceed the order total ({format_money(totals.total, currency)}).",
        )
    if errors:
        raise ValidationFailed("The contract is not valid.", fields=errors)
    return totals


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


def money_terms_changed(old: ContractTerms, new: ContractTerms) -> list[str]:
    """The money terms `new` changes (frozen once money is held), as names a person reads."""
    changed = [name for name in MONEY_TERMS if getattr(old, name) != getattr(new, name)]
    if len(old.items) != len(new.items):
        changed.append("line items")
    else:
        for before, after in zip(old.items, new.items, strict=True):
            for name in MONEY_ITEM_TERMS:
                if getattr(before, name) != getattr(after, name):
                    changed.append(f"line item {name.replace('_', ' ')}")
    return sorted(set(changed))


class DisputeOutcome:
    """What a dispute decided for its order: the vocabulary of `order_dispute_resolved`."""

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
