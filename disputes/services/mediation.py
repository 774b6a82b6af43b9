"""Mediation: a mediator picks the dispute up and asks for evidence; the sweep enforces the
evidence due dates.
"""

from datetime import datetime, timedelta

from django.db import transaction

from accounts.models import User
from disputes.models import Dispute, DisputeParty, EvidenceRequest
from disputes.services._engine import (
    _buyers,
    _check,
    _due_ids,
    _lock,
    _move,
    _party_users,
    _require_mediator,
    _suppliers,
    _sweep,
    _tell,
    _tell_mediators,
    _when,
)
from disputes.services.outcome import _close
from tradeassure import clock
from tradeassure.errors import InvalidTransition, ValidationFailed

P = DisputeParty


# ---------------------------------------------------------------------------------------------
# Mediation.
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def dispute_assign(*, dispute: Dispute, actor: User) -> Dispute:
    """A mediator picks the dispute up (or takes it over): it is under their review."""
    dispute = _lock(dispute)
    party = _require_mediator(dispute, actor, assigned=False)
    row = _check(dispute, "assign", party)
    if dispute.mediator_id == actor.pk:
        raise InvalidTransition("This dispute is already assigned to you.", code="already_assigned")
    previous = dispute.mediator
    dispute.mediator = actor
    dispute.assigned_at = clock.now()
    dispute.pickup_due_at = None
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        data={"mediator": actor.email, "previous": previous.email if previous else None},
    )
    for users in (_buyers(dispute), _suppliers(dispute)):
        _tell(
            dispute,
            users,
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
    dispute = _lock(dispute)
    party = _require_mediator(dispute, actor)
    row = _check(dispute, "request_evidence", party)
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
    _move(
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
    _tell(
        dispute,
        _party_users(dispute, requested_from),
        f"the mediator asks you for evidence by {_when(due_at)}",
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
    dispute = _lock(dispute_id)
    request = EvidenceRequest.objects.select_for_update(no_key=True).get(pk=pk)
    if request.state != EvidenceRequest.State.OPEN or request.due_at > clock.now():
        return False
    EvidenceRequest.objects.filter(pk=pk).update(
        state=EvidenceRequest.State.MISSED, answered_at=clock.now()
    )
    if request.requested_from == P.BUYER:
        row = _check(dispute, "evidence_missed_by_buyer", P.SYSTEM)
        note = "The buyer did not provide the evidence the mediator asked for in time."
        _close(dispute, row, party=P.SYSTEM, actor=None, note=note)
        for users in (_buyers(dispute), _suppliers(dispute)):
            _tell(dispute, users, "dispute cancelled: the buyer's evidence did not arrive", note)
        _tell_mediators(dispute, "cancelled: the buyer missed the evidence due date")
        return True
    row = _check(dispute, "evidence_missed_by_supplier", P.SYSTEM)
    note = "The supplier did not provide the evidence in time: decide on what is there."
    dispute.flagged_for_decision = True
    dispute.flag_reason = note
    _move(dispute, row, party=P.SYSTEM, actor=None, note=note, data={"evidence_request": pk})
    _tell_mediators(dispute, "the supplier missed the evidence due date — decide", note)
    _tell(dispute, _suppliers(dispute), "you missed the evidence due date", note)
    return True


def disputes_sweep_evidence_requests() -> int:
    """Beat: enforce evidence due dates."""
    due = EvidenceRequest.objects.filter(state=EvidenceRequest.State.OPEN, due_at__lte=clock.now())
    return _sweep(_due_ids(due), lambda pk: evidence_request_expire(request=pk))
