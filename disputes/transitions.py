"""The dispute lifecycle (DESIGN.md §5) as ONE explicit map: action x source x actor → target.

Every service that changes a dispute checks its move here (`LIFECYCLE.check`, on the kernel
engine in `tradeassure.core.transitions`), so what the services allow, what the dispute page
offers and what the README documents are the same thing.
A row's `target=None` keeps the status (a step on the timeline without a move).

    awaiting_supplier → negotiating → escalated → under_review (⇄ awaiting_inspection)
                                                             → resolved | cancelled
"""

from disputes.models import Dispute, DisputeEvent, DisputeParty, DisputeStatus
from tradeassure.core.transitions import Lifecycle, Transition, rows

S = DisputeStatus
BUYER, SUPPLIER, MEDIATOR, INSPECTOR, SYSTEM = (
    DisputeParty.BUYER,
    DisputeParty.SUPPLIER,
    DisputeParty.MEDIATOR,
    DisputeParty.INSPECTOR,
    DisputeParty.SYSTEM,
)
BEFORE_ESCALATION = (S.AWAITING_SUPPLIER, S.NEGOTIATING)
IN_MEDIATION = (S.ESCALATED, S.UNDER_REVIEW, S.AWAITING_INSPECTION)
OPEN = (*BEFORE_ESCALATION, *IN_MEDIATION)
REVIEWING = (S.UNDER_REVIEW, S.AWAITING_INSPECTION)


TRANSITIONS: list[Transition] = [
    *rows("open", "", S.AWAITING_SUPPLIER, {BUYER}, "Open a dispute"),
    # Talking and proposing goes on until the dispute closes (parties may still settle while a
    # mediator reviews). The supplier's first answer (counter-proposal or rejection) starts the
    # negotiation; accepting the other side's open proposal settles at once.
    *rows("message", OPEN, None, {BUYER, SUPPLIER, MEDIATOR}, "Send a message"),
    *rows("propose", S.AWAITING_SUPPLIER, S.NEGOTIATING, {SUPPLIER}, "Counter-propose"),
    *rows("propose", S.AWAITING_SUPPLIER, None, {BUYER}, "Change your request"),
    *rows("propose", (S.NEGOTIATING, *IN_MEDIATION), None, {BUYER, SUPPLIER}, "Make a proposal"),
    *rows("reject", S.AWAITING_SUPPLIER, S.NEGOTIATING, {SUPPLIER}, "Reject the claim"),
    *rows("reject", (S.NEGOTIATING, *IN_MEDIATION), None, {BUYER, SUPPLIER}, "Reject the proposal"),
    *rows("accept", OPEN, S.RESOLVED, {BUYER, SUPPLIER}, "Accept the proposal"),
    *rows("add_evidence", OPEN, None, {BUYER, SUPPLIER}, "Add evidence"),
    # Before escalation the buyer may withdraw (the order resumes).
    *rows("withdraw", BEFORE_ESCALATION, S.CANCELLED, {BUYER}, "Withdraw the dispute"),
    # Escalation: the buyer from day 4; the sweep on day 8, or when the supplier never answered.
    *rows("escalate", BEFORE_ESCALATION, S.ESCALATED, {BUYER}, "Escalate to a mediator"),
    *rows("auto_escalate", BEFORE_ESCALATION, S.ESCALATED, {SYSTEM}, "Escalated automatically"),
    # Mediation (Django admin).
    *rows("assign", S.ESCALATED, S.UNDER_REVIEW, {MEDIATOR}, "Assign to me"),
    *rows("assign", REVIEWING, None, {MEDIATOR}, "Take over"),
    *rows("request_evidence", REVIEWING, None, {MEDIATOR}, "Request evidence"),
    *rows("evidence_missed_by_buyer", REVIEWING, S.CANCELLED, {SYSTEM}, "Buyer missed evidence"),
    *rows("evidence_missed_by_supplier", REVIEWING, None, {SYSTEM}, "Supplier missed evidence"),
    *rows(
        "order_inspection", S.UNDER_REVIEW, S.AWAITING_INSPECTION, {MEDIATOR}, "Order inspection"
    ),
    *rows("inspection_fee_paid", S.AWAITING_INSPECTION, None, {SYSTEM}, "Inspection fee paid"),
    *rows(
        "inspection_fee_missed",
        S.AWAITING_INSPECTION,
        S.UNDER_REVIEW,
        {SYSTEM},
        "Inspection fee not paid",
    ),
    *rows("inspection_reported", S.AWAITING_INSPECTION, S.UNDER_REVIEW, {INSPECTOR}, "Report"),
    *rows("decide", REVIEWING, S.RESOLVED, {MEDIATOR}, "Decide"),
]

# The subject type goes on the call, not in an annotation: mypy checks an annotation's bound
# while it analyses the import cycle django-stubs builds between the models, before
# `Dispute.status` has its field type, and reports Dispute as no `Subject`.
LIFECYCLE = Lifecycle[Dispute](
    noun="dispute",
    transitions=TRANSITIONS,
    statuses=DisputeStatus,
    event_model=DisputeEvent,
    subject_field="dispute",
)

ACTIONS = LIFECYCLE.actions


def transitions_from(action: str, source: str) -> list[Transition]:
    return LIFECYCLE.rows_from(action, source)


def transition_for(status: str, action: str, party: str | None) -> Transition | None:
    """The row for this party taking this action from this status, or None."""
    return LIFECYCLE.row_for(status, action, party)


def label_for(action: str) -> str:
    return LIFECYCLE.label_for(action)
