"""Withdrawal and escalation: the buyer drops the claim or asks for a mediator; the sweep
escalates a claim the supplier never answered, or one unsettled on day 8.
"""

from datetime import datetime

from django.db import transaction

from accounts.models import User
from disputes.models import Dispute, DisputeParty, DisputeStatus
from disputes.services._engine import (
    _buyers,
    _check,
    _due_ids,
    _lock,
    _move,
    _rules,
    _suppliers,
    _sweep,
    _tell,
    _tell_mediators,
    _when,
    party_of,
)
from disputes.services.outcome import _close
from disputes.transitions import Transition
from tradeassure import clock
from tradeassure.errors import InvalidTransition

S = DisputeStatus
P = DisputeParty


# ---------------------------------------------------------------------------------------------
# Withdrawal and escalation.
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def dispute_withdraw(*, dispute: Dispute, actor: User, reason: str = "") -> Dispute:
    """Before escalation the buyer may drop the claim: the dispute is cancelled, the order resumes."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "withdraw", party)
    _close(dispute, row, party=party, actor=actor, note=reason or "Withdrawn by the buyer.")
    _tell(
        dispute, _suppliers(dispute), "the buyer withdrew the dispute — the order continues", reason
    )
    return dispute


def _escalate(
    dispute: Dispute, row: Transition, *, party: str, actor: User | None, note: str
) -> None:
    now = clock.now()
    dispute.escalated_at = now
    dispute.escalated_by = party
    dispute.supplier_response_due_at = None
    dispute.escalation_due_at = None
    dispute.pickup_due_at = clock.add_working_days(now, _rules()["MEDIATOR_PICKUP_WORKING_DAYS"])
    _move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"pickup_due_at": dispute.pickup_due_at.isoformat()},
    )
    _tell_mediators(dispute, f"escalated — pick up by {_when(dispute.pickup_due_at)}", note)
    for users in (_buyers(dispute), _suppliers(dispute)):
        _tell(
            dispute,
            users,
            "escalated to a mediator",
            f"{note} A mediator picks it up within {_rules()['MEDIATOR_PICKUP_WORKING_DAYS']} "
            "working days; you may still settle between yourselves until they decide.",
        )


@transaction.atomic
def dispute_escalate(*, dispute: Dispute, actor: User, note: str = "") -> Dispute:
    """The buyer asks for a mediator, from day 4 (after the supplier's 3 days)."""
    dispute = _lock(dispute)
    party = party_of(dispute=dispute, user=actor)
    row = _check(dispute, "escalate", party)
    if dispute.buyer_may_escalate_at and clock.now() < dispute.buyer_may_escalate_at:
        raise InvalidTransition(
            f"The supplier has until {_when(dispute.buyer_may_escalate_at)} to answer; you may "
            "escalate from then.",
            code="too_early_to_escalate",
        )
    _escalate(
        dispute, row, party=party, actor=actor, note=note or "The buyer escalated the dispute."
    )
    return dispute


def _auto_escalation_reason(dispute: Dispute, now: datetime) -> str | None:
    if (
        dispute.supplier_answered_at is None
        and dispute.supplier_response_due_at is not None
        and dispute.supplier_response_due_at <= now
    ):
        return "The supplier did not answer within the response window."
    if dispute.escalation_due_at is not None and dispute.escalation_due_at <= now:
        return "The dispute was not settled in time."
    return None


@transaction.atomic
def dispute_auto_escalate(*, dispute: Dispute | int) -> bool:
    """System: escalate when the supplier never answered, or on day 8. False if nothing was due."""
    dispute = _lock(dispute)
    if dispute.status not in (S.AWAITING_SUPPLIER, S.NEGOTIATING):
        return False
    reason = _auto_escalation_reason(dispute, clock.now())
    if reason is None:
        return False
    row = _check(dispute, "auto_escalate", P.SYSTEM)
    _escalate(dispute, row, party=P.SYSTEM, actor=None, note=reason)
    return True


def disputes_sweep_escalations() -> int:
    """Beat: escalate disputes the supplier never answered, or unresolved on day 8."""
    from django.db.models import Q

    now = clock.now()
    due = Dispute.objects.filter(status__in=(S.AWAITING_SUPPLIER, S.NEGOTIATING)).filter(
        Q(supplier_response_due_at__lte=now, supplier_answered_at__isnull=True)
        | Q(escalation_due_at__lte=now)
    )
    return _sweep(_due_ids(due), lambda pk: dispute_auto_escalate(dispute=pk))
