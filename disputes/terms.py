"""What a proposal offers or a mediator decides: the remedy as a value, its validation against
the order and the money held, what it does to the money, and the line a person reads.

Forms, serializers, the admin and the services all read them from here, so a remedy is checked
and described the same way wherever it is entered.
"""

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from django.conf import settings

from disputes.models import REQUESTABLE_REMEDIES, Dispute, Proposal, Remedy
from orders.models import ContractVersion, Order, OrderStatus
from payments.selectors import escrow_held
from tradeassure.core import clock
from tradeassure.core.errors import ValidationFailed
from tradeassure.core.money import format_money, is_exact, round_money

if TYPE_CHECKING:
    from orders.services import ContractTerms

SHIPPED_STATUSES = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)


@dataclass(frozen=True)
class OutcomeTerms:
    """A remedy with its details. `refund_amount` for partial_refund; a new agreement has at
    least one of a new shipment deadline, a price reduction (on the goods) or a replacement."""

    remedy: str
    refund_amount: Decimal | None = None
    new_shipment_deadline: datetime | None = None
    price_reduction: Decimal | None = None
    replacement: bool = False
    terms_note: str = ""


def goods_shipped(dispute: Dispute) -> bool:
    """Whether the goods had shipped when the claim was filed: refunds that release the rest, and
    replacements, need shipped goods."""
    return dispute.order_status_at_opening in SHIPPED_STATUSES


def outcome_terms_check(
    *, dispute: Dispute, terms: OutcomeTerms, allow_no_refund: bool = False
) -> OutcomeTerms:
    """Validate a remedy against the order and the money held; raise ValidationFailed listing
    every problem. Returns the terms with amounts rounded to the currency."""
    order = dispute.order
    currency = order.currency
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    allowed = (*REQUESTABLE_REMEDIES, Remedy.NO_REFUND) if allow_no_refund else REQUESTABLE_REMEDIES
    if terms.remedy not in allowed:
        add("remedy", "Choose a remedy.")
        raise ValidationFailed("The remedy is not valid.", fields=errors)
    held = escrow_held(escrow_reference=order.escrow_reference)
    refund = terms.refund_amount
    reduction = terms.price_reduction
    if terms.remedy == Remedy.FULL_REFUND and held <= 0:
        add("remedy", "Nothing is held in escrow for this order, so there is nothing to refund.")
    if terms.remedy == Remedy.PARTIAL_REFUND:
        if not goods_shipped(dispute):
            add(
                "remedy",
                "A partial refund releases the rest to the supplier, so it needs shipped goods. "
                "Ask for a new agreement (a price reduction or a new deadline) instead.",
            )
        if refund is None or refund <= 0:
            add("refund_amount", "Enter the amount to refund (more than 0).")
        elif not is_exact(refund, currency):
            add(
                "refund_amount",
                f"{currency} amounts have no smaller unit than {round_money(Decimal(1), currency)}.",
            )
        elif refund > held:
            add(
                "refund_amount",
                f"Only {format_money(held, currency)} is held; the refund cannot be more.",
            )
    else:
        refund = None
    if terms.remedy == Remedy.NEW_AGREEMENT:
        if not (terms.new_shipment_deadline or reduction or terms.replacement):
            add(
                "remedy",
                "A new agreement needs a new shipment deadline, a price reduction or a replacement.",
            )
        if terms.new_shipment_deadline is not None:
            now = clock.now()
            ahead = settings.TRADE_ASSURANCE["MAX_SHIPMENT_DEADLINE_AHEAD"]
            latest = now + ahead
            if terms.new_shipment_deadline <= now:
                add("new_shipment_deadline", "The new shipment deadline must be in the future.")
            elif terms.new_shipment_deadline > latest:
                add(
                    "new_shipment_deadline",
                    f"The new deadline may be at most {ahead.days} days ahead.",
                )
        if terms.replacement and not goods_shipped(dispute):
            add("replacement", "A replacement needs goods that were shipped.")
        elif terms.replacement and terms.new_shipment_deadline is None:
            # The order goes back to ready to ship, so the supplier needs a new deadline.
            add(
                "new_shipment_deadline",
                "Give the date by which the supplier ships the replacement.",
            )
        if reduction is not None:
            if reduction <= 0 or not is_exact(reduction, currency):
                add("price_reduction", f"Enter a price reduction of more than 0 in {currency}.")
            elif reduction >= order.subtotal:
                add(
                    "price_reduction",
                    f"The reduction must be less than the goods' price "
                    f"({format_money(order.subtotal, currency)}); ask for a full refund instead.",
                )
    else:
        reduction = None
    if errors:
        raise ValidationFailed("The remedy is not valid.", fields=errors)
    if terms.remedy != Remedy.NEW_AGREEMENT:
        return OutcomeTerms(remedy=terms.remedy, refund_amount=refund, terms_note=terms.terms_note)
    return dataclasses.replace(terms, refund_amount=None, price_reduction=reduction)


def reduced_contract_terms(order: Order, terms: OutcomeTerms) -> "ContractTerms":
    """The contract in force with the new agreement applied (deadline, reduced unit prices)."""
    from orders.services import contract_terms_of

    # A disputed order was placed, so it has a contract in force.
    current = contract_terms_of(cast(ContractVersion, order.current_version))
    new = current
    if terms.new_shipment_deadline is not None:
        new = dataclasses.replace(new, shipment_deadline=terms.new_shipment_deadline)
    if terms.price_reduction:
        # Spread the reduction over the unit prices in proportion (rounded to the minor unit);
        # the exact new total is what the executed agreement records and refunds against.
        factor = (order.subtotal - terms.price_reduction) / order.subtotal
        minimum = round_money(Decimal("0.01"), order.currency) or Decimal(1)
        items = [
            dataclasses.replace(
                item, unit_price=max(minimum, round_money(item.unit_price * factor, order.currency))
            )
            for item in current.items
        ]
        new = dataclasses.replace(new, items=items)
    if terms.replacement or terms.terms_note:
        extra = []
        if terms.replacement:
            extra.append("Replacement goods to be shipped by the supplier")
        if terms.terms_note:
            extra.append(terms.terms_note.strip())
        customisation = (current.customisation + "\n" if current.customisation else "") + (
            "; ".join(extra)
        )
        new = dataclasses.replace(new, customisation=customisation[:2000])
    return new


def outcome_preview(*, dispute: Dispute, terms: OutcomeTerms) -> dict[str, Decimal]:
    """What an outcome does to the money: refund, release, and the new contract total."""
    from orders.services import contract_totals

    order = dispute.order
    held = escrow_held(escrow_reference=order.escrow_reference)
    if terms.remedy == Remedy.FULL_REFUND:
        return {"refund": held, "release": Decimal(0), "new_total": order.total}
    if terms.remedy == Remedy.PARTIAL_REFUND:
        refund = terms.refund_amount or Decimal(0)
        return {"refund": refund, "release": held - refund, "new_total": order.total}
    if terms.remedy == Remedy.NO_REFUND:
        release = held if goods_shipped(dispute) else Decimal(0)
        return {"refund": Decimal(0), "release": release, "new_total": order.total}
    new_total = order.total
    if terms.price_reduction:
        new_total = contract_totals(terms=reduced_contract_terms(order, terms)).total
    refund = max(Decimal(0), held - new_total) if terms.price_reduction else Decimal(0)
    return {"refund": refund, "release": Decimal(0), "new_total": new_total}


def describe_terms(terms: OutcomeTerms | Proposal, currency: str) -> str:
    """One line a person reads: "Partial refund of USD 200.00"."""
    remedy = terms.remedy
    if remedy == Remedy.FULL_REFUND:
        return "Full refund of what is held"
    if remedy == Remedy.PARTIAL_REFUND:
        return f"Partial refund of {format_money(terms.refund_amount or Decimal(0), currency)}"
    if remedy == Remedy.NO_REFUND:
        return "No refund"
    parts = []
    if terms.new_shipment_deadline:
        parts.append(f"new shipment deadline {terms.new_shipment_deadline:%Y-%m-%d}")
    if terms.price_reduction:
        parts.append(f"price reduced by {format_money(terms.price_reduction, currency)}")
    if terms.replacement:
        parts.append("replacement goods")
    text = "New agreement: " + ", ".join(parts)
    if terms.terms_note:
        text += f" ({terms.terms_note})"
    return text


def terms_of_proposal(proposal: Proposal) -> OutcomeTerms:
    """The terms a stored proposal offers, to check and execute like any other."""
    return OutcomeTerms(
        remedy=proposal.remedy,
        refund_amount=proposal.refund_amount,
        new_shipment_deadline=proposal.new_shipment_deadline,
        price_reduction=proposal.price_reduction,
        replacement=proposal.replacement,
        terms_note=proposal.terms_note,
    )
