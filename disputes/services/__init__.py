"""Every write to a dispute: filing, negotiation, escalation, mediation, inspection, the outcome.

One module per stage of the lifecycle (`filing`, `negotiation`, `escalation`, `mediation`,
`inspection`, `outcome`) on one private engine (`_engine`); the remedies as values live in
`disputes.terms`. This package re-exports every public name, so `from disputes.services import x`
and `disputes.services.x` keep working.

Each service: locks the dispute row (`select_for_update(no_key=True)`, so rows that merely point
at it, e.g. a capture hook writing a timeline event, are not blocked) and, when it touches the
order or its money, the escrow and then the order after it (always dispute → escrow → order →
inspection; the orders services and the payments capture hook take escrow → order → inspection
and never lock a dispute, so no two paths wait on each other in opposite orders), checks the map
in `disputes.transitions` with the kernel's `Lifecycle.check` (`InvalidTransition` 409 /
`NotAllowed` 403, nothing changed), applies the change, writes a `DisputeEvent`, publishes a
domain event to both organisations and notifies whoever must act next. Sweeps pick due rows with
the kernel's `sweep_due` and hand each to its service, which locks and re-checks it.

Money and the order move only through `orders.services` (the disputes hand-off) and
`payments.services`, with idempotency keys derived from the dispute, so a retried call never
moves money twice. `dispute_outcome_execute` is the ONE place an outcome is carried out.
"""

from disputes.services._engine import EVIDENCE_FOLDER, party_of
from disputes.services.escalation import (
    dispute_auto_escalate,
    dispute_escalate,
    dispute_withdraw,
    disputes_sweep_escalations,
)
from disputes.services.filing import (
    QUALITY_TYPES,
    dispute_allowed_types,
    dispute_open,
    dispute_open_refusal,
)
from disputes.services.inspection import (
    dispute_inspection_fee_captured,
    dispute_inspection_fee_pay,
    dispute_order_inspection,
    disputes_sweep_inspection_fees,
    inspection_fee_default,
    inspection_fee_expire,
    inspection_report_submit,
)
from disputes.services.mediation import (
    dispute_assign,
    dispute_request_evidence,
    disputes_sweep_evidence_requests,
    evidence_request_expire,
)
from disputes.services.negotiation import (
    dispute_accept,
    dispute_cite_message,
    dispute_evidence_add,
    dispute_message_send,
    dispute_propose,
    dispute_reject,
)
from disputes.services.outcome import dispute_decide, dispute_outcome_execute
from disputes.terms import (
    SHIPPED_STATUSES,
    OutcomeTerms,
    describe_terms,
    outcome_preview,
    outcome_terms_check,
)

__all__ = [
    "EVIDENCE_FOLDER",
    "QUALITY_TYPES",
    "SHIPPED_STATUSES",
    "OutcomeTerms",
    "describe_terms",
    "dispute_accept",
    "dispute_allowed_types",
    "dispute_assign",
    "dispute_auto_escalate",
    "dispute_cite_message",
    "dispute_decide",
    "dispute_escalate",
    "dispute_evidence_add",
    "dispute_inspection_fee_captured",
    "dispute_inspection_fee_pay",
    "dispute_message_send",
    "dispute_open",
    "dispute_open_refusal",
    "dispute_order_inspection",
    "dispute_outcome_execute",
    "dispute_propose",
    "dispute_reject",
    "dispute_request_evidence",
    "dispute_withdraw",
    "disputes_sweep_escalations",
    "disputes_sweep_evidence_requests",
    "disputes_sweep_inspection_fees",
    "evidence_request_expire",
    "inspection_fee_default",
    "inspection_fee_expire",
    "inspection_report_submit",
    "outcome_preview",
    "outcome_terms_check",
    "party_of",
]
