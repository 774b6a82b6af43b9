"""Withdrawal and escalation: the buyer drops the claim or asks for a mediator; the sweep
escalates a claim the supplier never answered, or one unsettled on day 8.
"""

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from accounts.models import User
from disputes.error_codes import DisputeErrorCode
from disputes.models import Dispute, DisputeParty, DisputeStatus
from disputes.services._engine import (
    DisputeMoved,
    dispute_check,
    dispute_lock,
    dispute_move,
    dispute_tell,
    dispute_tell_mediators,
    dispute_tell_parties,
    disputes_move_many,
    disputes_sweep_batches,
    when,
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
            f"The supplier has until {when(dispute.buyer_may_escalate_at)} to answer; you may "
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


def _claim_due_escalations(now: datetime, after: int, limit: int) -> list[Dispute]:
    """Lock the disputes due for escalation (re-checked by the query under the lock), skipping
    those someone else holds."""
    claimed = (
        Dispute.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
        .select_related("order", "mediator")
        .annotate(supplier_organisation_id=F("order__supplier__organisation_id"))
        .filter(status__in=BEFORE_ESCALATION, pk__gt=after)
        .filter(
            Q(supplier_response_due_at__lte=now, supplier_answered_at__isnull=True)
            | Q(escalation_due_at__lte=now)
        )
        .order_by("pk")[:limit]
    )
    disputes: list[Dispute] = []
    for dispute in claimed:  # the order knows its supplier's organisation without the supplier
        dispute.order.__dict__["supplier_organisation_id"] = dispute.__dict__.pop(
            "supplier_organisation_id"
        )
        disputes.append(dispute)
    return disputes


def _escalate_many(disputes: Sequence[Dispute], now: datetime) -> int:
    """`dispute_auto_escalate` for a batch of locked, due disputes."""
    pickup_days = settings.TRADE_ASSURANCE["MEDIATOR_PICKUP_WORKING_DAYS"]
    pickup_due_at = clock.add_working_days(now, pickup_days)
    moves = []
    for dispute in disputes:
        reason = _auto_escalation_reason(dispute, now)
        if reason is None:
            continue
        row = LIFECYCLE.check(dispute, "auto_escalate", P.SYSTEM)
        moves.append(
            DisputeMoved(
                dispute=dispute,
                row=row,
                from_status=dispute.status,
                changes={
                    "escalated_at": now,
                    "escalated_by": P.SYSTEM,
                    "supplier_response_due_at": None,
                    "escalation_due_at": None,
                    "pickup_due_at": pickup_due_at,
                },
                note=reason,
                data={"pickup_due_at": pickup_due_at.isoformat()},
                tells=[
                    ("mediators", f"escalated — pick up by {when(pickup_due_at)}", reason),
                    (
                        "parties",
                        "escalated to a mediator",
                        f"{reason} A mediator picks it up within {pickup_days} "
                        "working days; you may still settle between yourselves until they decide.",
                    ),
                ],
            )
        )
    return disputes_move_many(moves, now=now)


def disputes_sweep_escalations() -> int:
    """Beat: escalate disputes the supplier never answered, or unresolved on day 8 (set-based;
    a batch that fails goes one by one through `dispute_auto_escalate`)."""
    return disputes_sweep_batches(
        name="sweep_escalations",
        noun="Dispute",
        claim=_claim_due_escalations,
        apply=lambda disputes, now: _escalate_many(disputes, now),
        one_by_one=lambda pk: dispute_auto_escalate(dispute=pk),
    )
