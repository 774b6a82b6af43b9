"""The dispute lifecycle (DESIGN.md §5) as ONE explicit map: action x source x actor → target.

Every service that changes a dispute looks its move up here (`transition_for`), so what the
services allow, what the dispute page offers and what the README documents are the same thing.
A row's `target=None` keeps the status (a step on the timeline without a move).

    awaiting_supplier → negotiating → escalated → under_review (⇄ awaiting_inspection)
                                                             → resolved | cancelled
"""

from dataclasses import dataclass

from disputes.models import DisputeParty, DisputeStatus

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


@dataclass(frozen=True)
class Transition:
    action: str
    source: str
    target: str
    actors: frozenset[str]
    label: str


def _t(action, sources, target, actors, label) -> list[Transition]:
    if isinstance(sources, str):
        sources = (sources,)
    return [
        Transition(action, source, target or source, frozenset(actors), label) for source in sources
    ]


TRANSITIONS: list[Transition] = [
    *_t("open", "", S.AWAITING_SUPPLIER, {BUYER}, "Open a dispute"),
    # Talking and proposing goes on until the dispute closes (parties may still settle while a
    # mediator reviews). The supplier's first answer (counter-proposal or rejection) starts the
    # negotiation; accepting the other side's open proposal settles at once.
    *_t("message", OPEN, None, {BUYER, SUPPLIER, MEDIATOR}, "Send a message"),
    *_t("propose", S.AWAITING_SUPPLIER, S.NEGOTIATING, {SUPPLIER}, "Counter-propose"),
    *_t("propose", S.AWAITING_SUPPLIER, None, {BUYER}, "Change your request"),
    *_t("propose", (S.NEGOTIATING, *IN_MEDIATION), None, {BUYER, SUPPLIER}, "Make a proposal"),
    *_t("reject", S.AWAITING_SUPPLIER, S.NEGOTIATING, {SUPPLIER}, "Reject the claim"),
    *_t("reject", (S.NEGOTIATING, *IN_MEDIATION), None, {BUYER, SUPPLIER}, "Reject the proposal"),
    *_t("accept", OPEN, S.RESOLVED, {BUYER, SUPPLIER}, "Accept the proposal"),
    *_t("add_evidence", OPEN, None, {BUYER, SUPPLIER}, "Add evidence"),
    # Before escalation the buyer may withdraw (the order resumes).
    *_t("withdraw", BEFORE_ESCALATION, S.CANCELLED, {BUYER}, "Withdraw the dispute"),
    # Escalation: the buyer from day 4; the sweep on day 8, or when the supplier never answered.
    *_t("escalate", BEFORE_ESCALATION, S.ESCALATED, {BUYER}, "Escalate to a mediator"),
    *_t("auto_escalate", BEFORE_ESCALATION, S.ESCALATED, {SYSTEM}, "Escalated automatically"),
    # Mediation (Django admin).
    *_t("assign", S.ESCALATED, S.UNDER_REVIEW, {MEDIATOR}, "Assign to me"),
    *_t("assign", REVIEWING, None, {MEDIATOR}, "Take over"),
    *_t("request_evidence", REVIEWING, None, {MEDIATOR}, "Request evidence"),
    *_t("evidence_missed_by_buyer", REVIEWING, S.CANCELLED, {SYSTEM}, "Buyer missed evidence"),
    *_t("evidence_missed_by_supplier", REVIEWING, None, {SYSTEM}, "Supplier missed evidence"),
    *_t("order_inspection", S.UNDER_REVIEW, S.AWAITING_INSPECTION, {MEDIATOR}, "Order inspection"),
    *_t("inspection_fee_paid", S.AWAITING_INSPECTION, None, {SYSTEM}, "Inspection fee paid"),
    *_t(
        "inspection_fee_missed",
        S.AWAITING_INSPECTION,
        S.UNDER_REVIEW,
        {SYSTEM},
        "Inspection fee not paid",
    ),
    *_t("inspection_reported", S.AWAITING_INSPECTION, S.UNDER_REVIEW, {INSPECTOR}, "Report"),
    *_t("decide", REVIEWING, S.RESOLVED, {MEDIATOR}, "Decide"),
]

_BY_KEY: dict[tuple[str, str], list[Transition]] = {}
for _row in TRANSITIONS:
    _BY_KEY.setdefault((_row.action, _row.source), []).append(_row)

ACTIONS = sorted({row.action for row in TRANSITIONS})


def transitions_from(action: str, source: str) -> list[Transition]:
    return _BY_KEY.get((action, source), [])


def transition_for(status: str, action: str, party: str | None) -> Transition | None:
    """The row for this party taking this action from this status, or None."""
    for row in transitions_from(action, status):
        if party in row.actors:
            return row
    return None


def label_for(action: str) -> str:
    return next((row.label for row in TRANSITIONS if row.action == action), action)
