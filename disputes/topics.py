"""The domain event topics the disputes app publishes (listed by `tradeassure.platform.catalogue`).

Every move publishes `dispute.<action>` (the inspection fee's capture too), so there is one
topic per action of `disputes.transitions`; a test checks they stay in step.
"""

from enum import StrEnum


class DisputeTopic(StrEnum):
    # One per action of the transition map (disputes.transitions.TRANSITIONS): `dispute.<action>`.
    ACCEPT = "dispute.accept"
    ADD_EVIDENCE = "dispute.add_evidence"
    ASSIGN = "dispute.assign"
    AUTO_ESCALATE = "dispute.auto_escalate"
    DECIDE = "dispute.decide"
    ESCALATE = "dispute.escalate"
    EVIDENCE_MISSED_BY_BUYER = "dispute.evidence_missed_by_buyer"
    EVIDENCE_MISSED_BY_SUPPLIER = "dispute.evidence_missed_by_supplier"
    INSPECTION_FEE_MISSED = "dispute.inspection_fee_missed"
    INSPECTION_FEE_PAID = "dispute.inspection_fee_paid"
    INSPECTION_REPORTED = "dispute.inspection_reported"
    MESSAGE = "dispute.message"
    OPEN = "dispute.open"
    ORDER_INSPECTION = "dispute.order_inspection"
    PROPOSE = "dispute.propose"
    REJECT = "dispute.reject"
    REQUEST_EVIDENCE = "dispute.request_evidence"
    WITHDRAW = "dispute.withdraw"
