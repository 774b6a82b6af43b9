"""Withdrawal and escalation: the buyer drops the claim or asks for a mediator; the sweep
escalates a claim the supplier never answered, or one unsettled on day 8.
"""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from accounts.models import User
from disputes.error_codes import DisputeErrorCode
from disputes.models import Dispute, DisputeParty, DisputeStatus
from disputes.services._engine import (
    dispute_check,
    dispute_lock,
    dispute_move,
    dispute_tell,
    dispute_tell_mediators,
    dispute_tell_parties,
    disputes_sweep,
    when,
    when_here,
)
from disputes.services.outcome import dispute_close
from disputes.transitions import BEFORE_ESCALATION, LIFECYCLE, Transition
from orders.parties import order_supplier_staff
from tradeassure.core import clock
from tradeassure.core.errors import InvalidTransition

S = DisputeStatus
P = DisputeParty


@transaction.atomic
def dispute_withdraw(*, dispute: Dispute, actor: User, reason: str = "") -> Dispute:
    """Before escalation the buyer may drop the claim: the dispute is cancelled, the order resumes."""
    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, "withdraw", actor)
    dispute_close(dispute, row, party=party, actor=actor, note=reason or "Withdrawn by the buyer.")
    dispute_tell(
        dispute,
        order_supplier_staff(dispute.order),
        "the buyer withdrew the dispute — the order continues",
        reason,
    )
    return dispute


def _escalate(
    dispute: Dispute, row: Transition, *, party: str, actor: User | None, note: str
) -> None:
    now = clock.now()
    pickup_days = settings.TRADE_ASSURANCE["MEDIATOR_PICKUP_WORKING_DAYS"]
    dispute.escalated_at = now
    dispute.escalated_by = party
    dispute.supplier_response_due_at = None
    dispute.escalation_due_at = None
    dispute.pickup_due_at = clock.add_working_days(now, pickup_days)
    dispute_move(
        dispute,
        row,
        party=party,
        actor=actor,
        note=note,
        data={"pickup_due_at": dispute.pickup_due_at.isoformat()},
    )
    dispute_tell_mediators(dispute, f"escalated — pick up by {when(dispute.pickup_due_at)}", note)
    dispute_tell_parties(
        dispute,
        "escalated to a mediator",
        f"{note} A mediator picks it up within {pickup_days} "
        "working days; you may still settle between yourselves until they decide.",
    )


@transaction.atomic
def dispute_escalate(*, dispute: Dispute, actor: User, note: str = "") -> Dispute:
    """The buyer asks for a mediator, from day 4 (after the supplier's 3 days)."""
    dispute = dispute_lock(dispute)
    row, party = dispute_check(dispute, "escalate", actor)
    if dispute.buyer_may_escalate_at and clock.now() < dispute.buyer_may_escalate_at:
        raise InvalidTransition(
            f"The supplier has until {when_here(dispute.buyer_may_escalate_at)} to answer; you may "
            "escalate from then.",
            code=DisputeErrorCode.TOO_EARLY_TO_ESCALATE,
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
    dispute = dispute_lock(dispute)
    if dispute.status not in (S.AWAITING_SUPPLIER, S.NEGOTIATING):
        return False
    reason = _auto_escalation_reason(dispute, clock.now())
    if reason is None:
        return False
    row = LIFECYCLE.check(dispute, "auto_escalate", P.SYSTEM)
    _escalate(dispute, row, party=P.SYSTEM, actor=None, note=reason)
    return True


def disputes_sweep_escalations() -> int:
    """Beat: escalate disputes the supplier never answered, or unresolved on day 8."""
    return disputes_sweep(
        name="sweep_escalations",
        noun="Dispute",
        due=lambda now: Dispute.objects.filter(status__in=BEFORE_ESCALATION).filter(
            Q(supplier_response_due_at__lte=now, supplier_answered_at__isnull=True)
            | Q(escalation_due_at__lte=now)
        ),
        handle=lambda pk: dispute_auto_escalate(dispute=pk),
    )
