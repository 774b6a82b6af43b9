"""Negotiation: messages, proposals, rejections, acceptance (which settles at once) and
evidence the parties add.
"""

from collections.abc import Sequence
from typing import Any

from django.core.files import File
from django.db import transaction

from accounts.models import User
from disputes.error_codes import DisputeErrorCode
from disputes.models import (
    CitedMessage,
    Dispute,
    DisputeMessage,
    DisputeParty,
    DisputeStatus,
    Evidence,
    EvidenceRequest,
    Proposal,
)
from disputes.services._engine import (
    dispute_check,
    dispute_lock,
    dispute_move,
    dispute_tell,
    dispute_tell_mediators,
    evidence_create,
    evidence_files_store,
    other_party,
    party_users,
    uploads_removed_on_error,
    when,
)
from disputes.services.outcome import dispute_outcome_execute
from disputes.terms import OutcomeTerms, describe_terms, outcome_terms_check, terms_of_proposal
from orders.models import OrderMessage
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed

S = DisputeStatus
P = DisputeParty


def proposal_create(
    *, dispute: Dispute, party: str, actor: User, terms: OutcomeTerms, message: str
) -> Proposal:
    """The party's new open proposal; any open one is superseded, so only the latest offer can be
    accepted."""
    now = clock.now()
    Proposal.objects.filter(dispute=dispute, state=Proposal.State.OPEN).update(
        state=Proposal.State.SUPERSEDED, answered_at=now, answered_by=actor
    )
    return Proposal.objects.create(
        dispute=dispute,
        party=party,
        proposed_by=actor,
        remedy=terms.remedy,
        refund_amount=terms.refund_amount,
        new_shipment_deadline=terms.new_shipment_deadline,
        price_reduction=terms.price_reduction,
        replacement=terms.replacement,
        terms_note=terms.terms_note[:2000],
        message=message,
        created_at=now,
    )


def _mark_supplier_answered(dispute: Dispute) -> None:
    if dispute.supplier_answered_at is None:
        dispute.supplier_answered_at = clock.now()
        dispute.supplier_response_due_at = None


@transaction.atomic
def dispute_message_send(*, dispute: Dispute, actor: User, body: str) -> DisputeMessage:
    """A message on the dispute (parties or the mediator); the others are told."""
    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, "message", actor)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a message.", fields={"body": ["Write a message."]})
    message = DisputeMessage.objects.create(
        dispute=dispute, author=actor, author_party=party, body=body[:5000], created_at=clock.now()
    )
    dispute_move(dispute, row, party=party, actor=actor, note=body[:500])
    title = f"new message from the {P(party).label.lower()}"
    for other in {P.BUYER, P.SUPPLIER} - {party}:
        dispute_tell(dispute, party_users(dispute, other), title, body[:500])
    if party != P.MEDIATOR and dispute.mediator_id:
        dispute_tell_mediators(dispute, title, body[:500])
    return message


@transaction.atomic
def dispute_propose(
    *, dispute: Dispute, actor: User, terms: OutcomeTerms, message: str = ""
) -> Proposal:
    """A party offers a remedy (a supplier's counter-proposal answers the claim). Replaces any
    open proposal; the other side accepts it to settle at once."""
    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, "propose", actor)
    terms = outcome_terms_check(dispute=dispute, terms=terms)
    proposal = proposal_create(
        dispute=dispute, party=party, actor=actor, terms=terms, message=(message or "").strip()
    )
    if party == P.SUPPLIER:
        _mark_supplier_answered(dispute)
    text = describe_terms(terms, dispute.currency)
    dispute_move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=message,
        data={"proposal": proposal.pk, "terms": text},
    )
    dispute_tell(
        dispute,
        party_users(dispute, other_party(party)),
        f"the {P(party).label.lower()} proposes: {text}",
        "Accept it to settle the dispute now, or answer with your own proposal.",
    )
    return proposal


@uploads_removed_on_error
@transaction.atomic
def dispute_reject(
    *, dispute: Dispute, actor: User, message: str, evidence_files: Sequence[File] = ()
) -> Dispute:
    """A party rejects the other side's open proposal (the supplier may reject the claim itself),
    saying why and optionally attaching evidence."""
    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, "reject", actor)
    message = (message or "").strip()
    if not message:
        raise ValidationFailed(
            "Say why you reject it.", fields={"message": ["Say why you reject it."]}
        )
    proposal = dispute.proposals.filter(state=Proposal.State.OPEN).first()
    if proposal is None or proposal.party == party:
        raise InvalidTransition(
            "There is no proposal from the other side to reject.", code=DisputeErrorCode.NO_PROPOSAL
        )
    stored = evidence_files_store(evidence_files)
    now = clock.now()
    Proposal.objects.filter(pk=proposal.pk).update(
        state=Proposal.State.REJECTED, answered_at=now, answered_by=actor
    )
    evidence_create(dispute=dispute, party=party, actor=actor, stored=stored)
    if party == P.SUPPLIER:
        _mark_supplier_answered(dispute)
    dispute_move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=message,
        data={"proposal": proposal.pk, "evidence_files": len(stored)},
    )
    body = message[:500]
    if party == P.SUPPLIER and dispute.status in (S.AWAITING_SUPPLIER, S.NEGOTIATING):
        body += (
            f"\n\nMake a new proposal, or escalate to a mediator from "
            f"{when(dispute.buyer_may_escalate_at)}."
        )
    dispute_tell(
        dispute,
        party_users(dispute, other_party(party)),
        f"the {P(party).label.lower()} rejected the proposal",
        body,
    )
    return dispute


@transaction.atomic
def dispute_accept(*, dispute: Dispute, actor: User, proposal_id: int) -> Dispute:
    """Accept the other side's open proposal: the dispute settles at once (the outcome runs)."""
    dispute = dispute_lock(dispute)
    _, party = dispute_check(dispute, "accept", actor)
    proposal = (
        Proposal.objects.select_for_update(no_key=True)
        .filter(dispute=dispute, pk=proposal_id)
        .first()
    )
    if proposal is None:
        raise NotFound("No such proposal.", code=DisputeErrorCode.PROPOSAL_NOT_FOUND)
    if proposal.state != Proposal.State.OPEN:
        raise Conflict(
            "This proposal is no longer open (it was answered or replaced); look at the latest.",
            code=DisputeErrorCode.PROPOSAL_NOT_OPEN,
        )
    if proposal.party == party:
        raise InvalidTransition(
            "You made this proposal; the other side must accept it.",
            code=DisputeErrorCode.OWN_PROPOSAL,
        )
    Proposal.objects.filter(pk=proposal.pk).update(
        state=Proposal.State.ACCEPTED, answered_at=clock.now(), answered_by=actor
    )
    if party == P.SUPPLIER and dispute.supplier_answered_at is None:
        Dispute.objects.filter(pk=dispute.pk).update(supplier_answered_at=clock.now())
    return dispute_outcome_execute(
        dispute=dispute,
        actor=actor,
        terms=terms_of_proposal(proposal),
        via="agreement",
        reason=f"The {P(party).label.lower()} accepted the {P(proposal.party).label.lower()}'s proposal.",
        action="accept",
    )


@uploads_removed_on_error
@transaction.atomic
def dispute_evidence_add(
    *, dispute: Dispute, actor: User, files: Sequence[File], description: str = ""
) -> list[Evidence]:
    """A party adds evidence; it answers any open evidence request to that party."""
    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, "add_evidence", actor)
    if not [file for file in files if file is not None]:
        raise ValidationFailed("Choose at least one file.", fields={"files": ["Choose a file."]})
    stored = evidence_files_store(files)
    request = (
        EvidenceRequest.objects.select_for_update(no_key=True)
        .filter(dispute=dispute, requested_from=party, state=EvidenceRequest.State.OPEN)
        .order_by("due_at")
        .first()
    )
    evidence = evidence_create(
        dispute=dispute,
        party=party,
        actor=actor,
        stored=stored,
        description=description,
        request=request,
    )
    data: dict[str, Any] = {"evidence_files": len(stored)}
    if request is not None:
        EvidenceRequest.objects.filter(pk=request.pk).update(
            state=EvidenceRequest.State.FULFILLED, answered_at=clock.now()
        )
        data["evidence_request"] = request.pk
    dispute_move(dispute, row, party=party, actor=actor, note=description, data=data)
    title = f"the {P(party).label.lower()} added evidence"
    dispute_tell(dispute, party_users(dispute, other_party(party)), title, description)
    if dispute.mediator_id:
        dispute_tell_mediators(dispute, title, description)
    return evidence


@transaction.atomic
def dispute_cite_message(
    *, dispute: Dispute, actor: User, message_id: int, note: str = ""
) -> CitedMessage:
    """A party offers a message of the order's conversation as evidence (like adding a file).

    The message must be on the dispute's order and not hidden by staff. Citing the same message
    again returns the first citation and records nothing new."""
    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, "add_evidence", actor)
    message = OrderMessage.objects.filter(pk=message_id, order_id=dispute.order_id).first()
    if message is None:
        text = "No such message in this order's conversation."
        raise ValidationFailed(text, fields={"message_id": [text]})
    if message.is_hidden:
        text = "A message hidden by staff cannot be cited."
        raise ValidationFailed(text, fields={"message_id": [text]})
    existing = CitedMessage.objects.filter(dispute=dispute, message=message).first()
    if existing is not None:
        return existing
    note = note.strip()[:300]
    cited = CitedMessage.objects.create(
        dispute=dispute,
        message=message,
        party=party,
        cited_by=actor,
        note=note,
        cited_at=clock.now(),
    )
    dispute_move(
        dispute, row, party=party, actor=actor, note=note, data={"cited_message": message.pk}
    )
    title = f"the {P(party).label.lower()} cited a message of the order conversation"
    dispute_tell(dispute, party_users(dispute, other_party(party)), title, note)
    if dispute.mediator_id:
        dispute_tell_mediators(dispute, title, note)
    return cited
