"""How a dispute ends: a cancellation (the order resumes where it was), or a settlement or a
mediator's decision carried out by `dispute_outcome_execute`, the ONE place an outcome runs.
"""

import dataclasses
from decimal import Decimal
from typing import cast

from django.db import transaction

from accounts.models import User
from disputes.models import (
    Dispute,
    DisputeParty,
    DisputeStatus,
    EvidenceRequest,
    Proposal,
    Remedy,
)
from disputes.services._engine import (
    dispute_check,
    dispute_clear_timers,
    dispute_lock,
    dispute_move,
    dispute_tell_mediators,
    dispute_tell_parties,
    escrow_and_order_lock,
    require_mediator,
)
from disputes.services.inspection import inspections_close
from disputes.terms import (
    OutcomeTerms,
    describe_terms,
    goods_shipped,
    outcome_terms_check,
    reduced_contract_terms,
)
from disputes.transitions import LIFECYCLE, Transition
from payments.selectors import escrow_held
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition, ValidationFailed

S = DisputeStatus
P = DisputeParty


def dispute_close(
    dispute: Dispute, row: Transition, *, party: str, actor: User | None, note: str
) -> None:
    """Cancel a dispute: the order resumes where it was, money stays held, timers restart."""
    from orders.services import DisputeOutcome, order_dispute_resolved

    escrow_and_order_lock(dispute.order_id)
    order_dispute_resolved(
        order=dispute.order,
        actor=actor if party != P.SYSTEM else None,
        outcome=DisputeOutcome.RESUME,
        dispute_reference=dispute.reference,
        note=f"Dispute {dispute.reference} cancelled: {note}",
    )
    _end_open_items(dispute)
    inspections_close(dispute, settle_fault=False)
    dispute.outcome_reason = note
    dispute.closed_at = clock.now()
    dispute.closed_by = actor
    dispute_clear_timers(dispute)
    dispute_move(dispute, row, party=party, actor=actor, note=note)


def _end_open_items(dispute: Dispute) -> None:
    """A closing dispute leaves no proposal to accept and no evidence request to enforce."""
    now = clock.now()
    Proposal.objects.filter(dispute=dispute, state=Proposal.State.OPEN).update(
        state=Proposal.State.CLOSED, answered_at=now
    )
    EvidenceRequest.objects.filter(dispute=dispute, state=EvidenceRequest.State.OPEN).update(
        state=EvidenceRequest.State.CLOSED, answered_at=now
    )


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
    dispute = dispute_lock(dispute)
    party = require_mediator(dispute, actor)
    LIFECYCLE.check(dispute, "decide", party)
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

    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, action, actor)
    if row.target != S.RESOLVED:
        raise InvalidTransition(
            "This action does not resolve a dispute.", code="invalid_transition"
        )
    escrow_and_order_lock(dispute.order_id)
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
        refund = escrow_held(escrow_reference=order.escrow_reference)
    elif terms.remedy == Remedy.PARTIAL_REFUND:
        outcome = DisputeOutcome.PARTIAL_REFUND
        # `outcome_terms_check` above refuses a partial refund without an amount.
        refund = cast(Decimal, terms.refund_amount)
    elif terms.remedy == Remedy.NO_REFUND:
        outcome = DisputeOutcome.RELEASE if goods_shipped(dispute) else DisputeOutcome.RESUME
    else:
        # A replacement sends the order back to ready to ship with the money still held.
        outcome = DisputeOutcome.REPLACEMENT if terms.replacement else DisputeOutcome.NEW_AGREEMENT
        new_terms = reduced_contract_terms(order, terms)
        if terms.price_reduction:
            new_total = contract_totals(terms=new_terms).total
            initial = min(new_terms.initial_payment_amount, new_total)
            new_terms = dataclasses.replace(new_terms, initial_payment_amount=initial)
            refund = max(
                Decimal(0), escrow_held(escrow_reference=order.escrow_reference) - new_total
            )
        version = order_contract_amend_by_dispute(
            order=order, actor=actor, terms=new_terms, dispute_reference=reference, note=note
        )
        version_number = version.number
    order = order_dispute_resolved(
        order=order,
        actor=actor,
        outcome=outcome,
        dispute_reference=reference,
        refund_amount=refund if outcome != DisputeOutcome.FULL_REFUND else Decimal(0),
        supplier_at_fault=bool(supplier_at_fault) and via == "decision",
        note=note,
        tell_parties=False,  # the one notice per person is ours, below
    )
    settled = inspections_close(dispute, settle_fault=bool(supplier_at_fault))
    _end_open_items(dispute)
    dispute.outcome = terms.remedy
    dispute.outcome_refund = refund
    dispute.outcome_reason = reason
    dispute.resolved_via = via
    dispute.supplier_at_fault = bool(supplier_at_fault)
    dispute.flagged_for_decision = False
    dispute.closed_at = clock.now()
    dispute.closed_by = actor
    dispute_clear_timers(dispute)
    dispute_move(
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
    # One notice per person: what was decided (title), the terms and the reason (body).
    title = f"resolved — the order is now {order.get_status_display().lower()}"
    body = f"{describe_terms(terms, order.currency)}. {reason}"
    if outcome == DisputeOutcome.REPLACEMENT:
        title += f"; the supplier must ship the replacement by {order.shipment_deadline:%Y-%m-%d}"
        body += (
            "\n\nThe supplier records the replacement shipment with its documents on the order "
            "page; the payment stays in escrow until the buyer has the replacement and accepts it."
        )
    dispute_tell_parties(dispute, title, body)
    if dispute.mediator_id and party != P.MEDIATOR:
        dispute_tell_mediators(dispute, "settled by the parties", reason)
    return dispute
