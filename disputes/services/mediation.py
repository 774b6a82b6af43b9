"""Mediation: a mediator picks the dispute up and asks for evidence; the sweep enforces the
evidence due dates.
"""

from datetime import datetime, timedelta

from django.db import transaction

from accounts.models import User
from disputes.error_codes import DisputeErrorCode
from disputes.models import Dispute, DisputeParty, EvidenceRequest
from disputes.services._engine import (
    dispute_lock,
    dispute_move,
    dispute_tell,
    dispute_tell_mediators,
    dispute_tell_parties,
    disputes_sweep,
    party_users,
    require_mediator,
    when,
)
from disputes.services.outcome import dispute_close
from disputes.transitions import LIFECYCLE
from orders.parties import order_supplier_staff
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition, ValidationFailed

P = DisputeParty


@transaction.atomic
def dispute_assign(*, dispute: Dispute, actor: User) -> Dispute:
    """A mediator picks the dispute up (or takes it over): it is under their review."""
    dispute = dispute_lock(dispute)
    party = require_mediator(dispute, actor, assigned=False)
    row = LIFECYCLE.check(dispute, "assign", party)
    if dispute.mediator_id == actor.pk:
        raise InvalidTransition(
            "This dispute is already assigned to you.", code=DisputeErrorCode.ALREADY_ASSIGNED
        )
    previous = dispute.mediator
    dispute.mediator = actor
    dispute.assigned_at = clock.now()
    dispute.pickup_due_at = None
    dispute_move(
        dispute,
        row,
        party=party,
        actor=actor,
        data={"mediator": actor.email, "previous": previous.email if previous else None},
    )
    dispute_tell_parties(
        dispute,
        "a mediator is reviewing the dispute",
        "The mediator may ask you for evidence; you may still settle between yourselves.",
    )
    return dispute


@transaction.atomic
def dispute_request_evidence(
    *, dispute: Dispute, actor: User, requested_from: str, note: str, due_at: datetime
) -> EvidenceRequest:
    """Ask one party for evidence by a date. Missed by the buyer: the dispute is cancelled;
    missed by the supplier: the mediator decides on what is there."""
    dispute = dispute_lock(dispute)
    party = require_mediator(dispute, actor)
    row = LIFECYCLE.check(dispute, "request_evidence", party)
    errors: dict[str, list[str]] = {}
    if requested_from not in (P.BUYER, P.SUPPLIER):
        errors["requested_from"] = ["Ask the buyer or the supplier."]
    if not (note or "").strip():
        errors["note"] = ["Say what evidence you need."]
    now = clock.now()
    if due_at is None or due_at <= now:
        errors["due_at"] = ["The due date must be in the future."]
    elif due_at > now + timedelta(days=30):
        errors["due_at"] = ["Give at most 30 days."]
    if errors:
        raise ValidationFailed("The request is not valid.", fields=errors)
    request = EvidenceRequest.objects.create(
        dispute=dispute,
        requested_from=requested_from,
        note=note.strip(),
        due_at=due_at,
        requested_by=actor,
        created_at=now,
    )
    dispute_move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"requested_from": requested_from, "due_at": due_at.isoformat()},
    )
    consequence = (
        "If you do not provide it in time, the dispute is cancelled and the order continues."
        if requested_from == P.BUYER
        else "If you do not provide it in time, the mediator decides on the evidence there is."
    )
    dispute_tell(
        dispute,
        party_users(dispute, requested_from),
        f"the mediator asks you for evidence by {when(due_at)}",
        f"{note.strip()}\n\n{consequence}",
    )
    return request


@transaction.atomic
def evidence_request_expire(*, request: EvidenceRequest | int) -> bool:
    """System: an evidence request passed its due date unanswered. False if nothing was due."""
    pk = request if isinstance(request, int) else request.pk
    dispute_id = EvidenceRequest.objects.filter(pk=pk).values_list("dispute_id", flat=True).first()
    if dispute_id is None:
        return False
    dispute = dispute_lock(dispute_id)
    request = EvidenceRequest.objects.select_for_update(no_key=True).get(pk=pk)
    if request.state != EvidenceRequest.State.OPEN or request.due_at > clock.now():
        return False
    EvidenceRequest.objects.filter(pk=pk).update(
        state=EvidenceRequest.State.MISSED, answered_at=clock.now()
    )
    if request.requested_from == P.BUYER:
        row = LIFECYCLE.check(dispute, "evidence_missed_by_buyer", P.SYSTEM)
        note = "The buyer did not provide the evidence the mediator asked for in time."
        dispute_close(dispute, row, party=P.SYSTEM, actor=None, note=note)
        dispute_tell_parties(
            dispute, "dispute cancelled: the buyer's evidence did not arrive", note
        )
        dispute_tell_mediators(dispute, "cancelled: the buyer missed the evidence due date")
        return True
    row = LIFECYCLE.check(dispute, "evidence_missed_by_supplier", P.SYSTEM)
    note = "The supplier did not provide the evidence in time: decide on what is there."
    dispute.flagged_for_decision = True
    dispute.flag_reason = note
    dispute_move(dispute, row, party=P.SYSTEM, actor=None, note=note, data={"evidence_request": pk})
    dispute_tell_mediators(dispute, "the supplier missed the evidence due date — decide", note)
    dispute_tell(
        dispute, order_supplier_staff(dispute.order), "you missed the evidence due date", note
    )
    return True


def disputes_sweep_evidence_requests() -> int:
    """Beat: enforce evidence due dates."""
    return disputes_sweep(
        name="sweep_evidence_requests",
        noun="Evidence request",
        due=lambda now: EvidenceRequest.objects.filter(
            state=EvidenceRequest.State.OPEN, due_at__lte=now
        ),
        handle=lambda pk: evidence_request_expire(request=pk),
    )
