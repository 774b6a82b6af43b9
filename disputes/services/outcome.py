"""How a dispute ends: the remedies, a cancellation (the order resumes), a mediator's decision,
and `dispute_outcome_execute`, the ONE place an outcome is carried out.
"""

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import User
from disputes.models import (
    REQUESTABLE_REMEDIES,
    Dispute,
    DisputeParty,
    DisputeStatus,
    EvidenceRequest,
    Proposal,
    Remedy,
)
from disputes.services._engine import (
    SHIPPED_STATUSES,
    _buyers,
    _check,
    _clear_timers,
    _held,
    _lock,
    _lock_order_and_escrow,
    _move,
    _require_mediator,
    _rules,
    _suppliers,
    _tell,
    _tell_mediators,
    party_of,
)
from disputes.services.inspection import _cancel_inspections
from disputes.transitions import Transition
from orders.models import Order
from tradeassure import clock
from tradeassure.errors import InvalidTransition, ValidationFailed
from tradeassure.money import format_money, is_exact, round_money

S = DisputeStatus
P = DisputeParty


# ---------------------------------------------------------------------------------------------
# Remedies: what a proposal offers or a mediator decides.
# ---------------------------------------------------------------------------------------------


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


def _goods_shipped(dispute: Dispute) -> bool:
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
    held = _held(order)
    refund = terms.refund_amount
    reduction = terms.price_reduction
    if terms.remedy == Remedy.FULL_REFUND and held <= 0:
        add("remedy", "Nothing is held in escrow for this order, so there is nothing to refund.")
    if terms.remedy == Remedy.PARTIAL_REFUND:
        if not _goods_shipped(dispute):
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
            latest = now + _rules()["MAX_SHIPMENT_DEADLINE_AHEAD"]
            if terms.new_shipment_deadline <= now:
                add("new_shipment_deadline", "The new shipment deadline must be in the future.")
            elif terms.new_shipment_deadline > latest:
                add(
                    "new_shipment_deadline",
                    f"The new deadline may be at most {_rules()['MAX_SHIPMENT_DEADLINE_AHEAD'].days} days ahead.",
                )
        if terms.replacement and not _goods_shipped(dispute):
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


def _reduced_contract_terms(order: Order, terms: OutcomeTerms):
    """The contract in force with the new agreement applied (deadline, reduced unit prices)."""
    from orders.services import contract_terms_of

    current = contract_terms_of(order.current_version)
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
    held = _held(order)
    if terms.remedy == Remedy.FULL_REFUND:
        return {"refund": held, "release": Decimal(0), "new_total": order.total}
    if terms.remedy == Remedy.PARTIAL_REFUND:
        refund = terms.refund_amount or Decimal(0)
        return {"refund": refund, "release": held - refund, "new_total": order.total}
    if terms.remedy == Remedy.NO_REFUND:
        release = held if _goods_shipped(dispute) else Decimal(0)
        return {"refund": Decimal(0), "release": release, "new_total": order.total}
    new_total = order.total
    if terms.price_reduction:
        new_total = contract_totals(terms=_reduced_contract_terms(order, terms)).total
    refund = max(Decimal(0), held - new_total) if terms.price_reduction else Decimal(0)
    return {"refund": refund, "release": Decimal(0), "new_total": new_total}


def describe_terms(terms: OutcomeTerms | Proposal, currency: str) -> str:
    """One line a person reads: "Partial refund of USD 200.00"."""
    remedy = terms.remedy
    if remedy == Remedy.FULL_REFUND:
        return "Full refund of what is held"
    if remedy == Remedy.PARTIAL_REFUND:
        return f"Partial refund of {format_money(terms.refund_amount or 0, currency)}"
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


def _terms_of(proposal: Proposal) -> OutcomeTerms:
    return OutcomeTerms(
        remedy=proposal.remedy,
        refund_amount=proposal.refund_amount,
        new_shipment_deadline=proposal.new_shipment_deadline,
        price_reduction=proposal.price_reduction,
        replacement=proposal.replacement,
        terms_note=proposal.terms_note,
    )


def _close(dispute: Dispute, row: Transition, *, party: str, actor: User | None, note: str) -> None:
    """Cancel a dispute: the order resumes where it was, money stays held, timers restart."""
    from orders.services import DisputeOutcome, order_dispute_resolved

    _lock_order_and_escrow(dispute.order_id)
    order_dispute_resolved(
        order=dispute.order,
        actor=actor if party != P.SYSTEM else None,
        outcome=DisputeOutcome.RESUME,
        dispute_reference=dispute.reference,
        note=f"Dispute {dispute.reference} cancelled: {note}",
    )
    _end_open_items(dispute)
    _cancel_inspections(dispute, settle_fault=False)
    dispute.outcome_reason = note
    dispute.closed_at = clock.now()
    dispute.closed_by = actor
    _clear_timers(dispute)
    _move(dispute, row, party=party, actor=actor, note=note)


def _end_open_items(dispute: Dispute) -> None:
    now = clock.now()
    Proposal.objects.filter(dispute=dispute, state=Proposal.State.OPEN).update(
        state=Proposal.State.CLOSED, answered_at=now
    )
    EvidenceRequest.objects.filter(dispute=dispute, state=EvidenceRequest.State.OPEN).update(
        state=EvidenceRequest.State.CLOSED, answered_at=now
    )


# ---------------------------------------------------------------------------------------------
# Deciding, and executing an outcome (the ONE place).
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def dispute_decide(
    *,
    dispute: Dispute,
    actor: User,
    terms: OutcomeTerms,
    reason: str,
    supplier_at_fault: bool | None = None,
) -> Dispute:
    """The assigned mediator decides with a reason: full/partial refund, no refund or a new
    agreement. `supplier_at_fault` defaults to True for every remedy but no_refund."""
    dispute = _lock(dispute)
    party = _require_mediator(dispute, actor)
    _check(dispute, "decide", party)
    if not (reason or "").strip():
        raise ValidationFailed(
            "Give the reason for the decision (both parties read it).",
            fields={"reason": ["Give the reason for the decision."]},
        )
    return dispute_outcome_execute(
        dispute=dispute,
        actor=actor,
        terms=terms,
        via="decision",
        reason=reason.strip(),
        action="decide",
        supplier_at_fault=supplier_at_fault,
    )


@transaction.atomic
def dispute_outcome_execute(
    *,
    dispute: Dispute,
    actor: User,
    terms: OutcomeTerms,
    via: str,
    reason: str,
    action: str,
    supplier_at_fault: bool | None = None,
) -> Dispute:
    """Carry out a settlement ("agreement") or a decision, all or nothing.

    Locks the dispute, then the escrow and the order (escrow first, like every orders service
    and the payments capture hook), so racing calls serialise on the dispute row. Then: the
    contract amendment (new agreement), `order_dispute_resolved` (unfreeze, refund and/or
    release, order status), inspection fees settled, the dispute resolved with its event, the
    parties told, supplier metrics recomputed. Called again on a resolved dispute it raises
    InvalidTransition and moves nothing (and every money key is derived from the dispute).
    """
    from orders.services import (
        DisputeOutcome,
        contract_totals,
        order_contract_amend_by_dispute,
        order_dispute_resolved,
    )
    from suppliers.services import supplier_metrics_recompute

    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, action, party)
    if row.target != S.RESOLVED:
        raise InvalidTransition(
            "This action does not resolve a dispute.", code="invalid_transition"
        )
    _lock_order_and_escrow(dispute.order_id)
    terms = outcome_terms_check(dispute=dispute, terms=terms, allow_no_refund=via == "decision")
    if supplier_at_fault is None:
        supplier_at_fault = terms.remedy != Remedy.NO_REFUND
    order = dispute.order
    reference = dispute.reference
    note = f"Dispute {reference} ({via}): {describe_terms(terms, order.currency)}. {reason}"
    refund = Decimal(0)
    version_number = None
    if terms.remedy == Remedy.FULL_REFUND:
        outcome = DisputeOutcome.FULL_REFUND
        refund = _held(order)
    elif terms.remedy == Remedy.PARTIAL_REFUND:
        outcome = DisputeOutcome.PARTIAL_REFUND
        refund = terms.refund_amount
    elif terms.remedy == Remedy.NO_REFUND:
        outcome = DisputeOutcome.RELEASE if _goods_shipped(dispute) else DisputeOutcome.RESUME
    else:
        # A replacement sends the order back to ready to ship with the money still held.
        outcome = DisputeOutcome.REPLACEMENT if terms.replacement else DisputeOutcome.NEW_AGREEMENT
        new_terms = _reduced_contract_terms(order, terms)
        if terms.price_reduction:
            new_total = contract_totals(terms=new_terms).total
            initial = min(new_terms.initial_payment_amount, new_total)
            new_terms = dataclasses.replace(new_terms, initial_payment_amount=initial)
            refund = max(Decimal(0), _held(order) - new_total)
        version = order_contract_amend_by_dispute(
            order=order, actor=actor, terms=new_terms, dispute_reference=reference, note=note
        )
        version_number = version.number
    order_dispute_resolved(
        order=order,
        actor=actor,
        outcome=outcome,
        dispute_reference=reference,
        refund_amount=refund if outcome != DisputeOutcome.FULL_REFUND else Decimal(0),
        supplier_at_fault=bool(supplier_at_fault) and via == "decision",
        note=note,
    )
    settled = _cancel_inspections(dispute, settle_fault=bool(supplier_at_fault))
    _end_open_items(dispute)
    dispute.outcome = terms.remedy
    dispute.outcome_refund = refund
    dispute.outcome_reason = reason
    dispute.resolved_via = via
    dispute.supplier_at_fault = bool(supplier_at_fault)
    dispute.flagged_for_decision = False
    dispute.closed_at = clock.now()
    dispute.closed_by = actor
    _clear_timers(dispute)
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=reason,
        data={
            "outcome": terms.remedy,
            "order_outcome": outcome,
            "terms": describe_terms(terms, order.currency),
            "refund": str(refund),
            "contract_version": version_number,
            "supplier_at_fault": bool(supplier_at_fault),
            "inspection_fees_settled": settled,
            "via": via,
        },
    )
    supplier_metrics_recompute(supplier=order.supplier)
    title = f"resolved — {describe_terms(terms, order.currency)}"
    for users in (_buyers(dispute), _suppliers(dispute)):
        _tell(dispute, users, title, reason)
    if dispute.mediator_id and party != P.MEDIATOR:
        _tell_mediators(dispute, "settled by the parties", reason)
    return dispute
