"""The error codes disputes raise (the `code` of a DomainError: API clients match on them).

One place, so a code is spelled once and a new one is seen next to the others. Values never
change. The codes the kernel raises for every app (`invalid_transition`, `not_allowed`, …) are not
here: they are common to all apps and passed as they are.
"""

from enum import StrEnum


class DisputeErrorCode(StrEnum):
    DISPUTE_NOT_FOUND = "dispute_not_found"
    DISPUTE_ALREADY_OPEN = "dispute_already_open"
    PROPOSAL_NOT_FOUND = "proposal_not_found"
    PROPOSAL_NOT_OPEN = "proposal_not_open"
    OWN_PROPOSAL = "own_proposal"
    NO_PROPOSAL = "no_proposal"
    TOO_EARLY_TO_ESCALATE = "too_early_to_escalate"
    NOT_ASSIGNED = "not_assigned"
    ALREADY_ASSIGNED = "already_assigned"
    EVIDENCE_NOT_FOUND = "evidence_not_found"
    TOO_MANY_FILES = "too_many_files"
    INSPECTION_NOT_FOUND = "inspection_not_found"
    FEE_NOT_DUE = "fee_not_due"
