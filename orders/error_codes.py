"""The error codes orders raises: the stable `code` of its DomainErrors, which the API returns and
clients branch on. One enum so a code is spelled once; the values never change.

Codes every app shares (`invalid_transition`, `not_allowed`, `validation_failed`, `not_found`,
…: the ones the kernel raises) are not here."""

from enum import StrEnum


class OrderErrorCode(StrEnum):
    NOT_A_BUYER = "not_a_buyer"  # only buyers place orders
    MONEY_TERMS_FROZEN = "money_terms_frozen"  # money is held: price and payment terms are fixed
    NO_CHANGES = "no_changes"  # a proposal identical to the contract in force
    UNKNOWN_OUTCOME = "unknown_outcome"  # a dispute outcome orders does not know
    BAD_AMOUNT = "bad_amount"  # a refund amount that is negative or finer than the currency
    REPLACEMENT_DEADLINE_MISSING = "replacement_deadline_missing"
    NOTHING_HELD = "nothing_held"  # a full refund with nothing in escrow
    INSUFFICIENT_ESCROW = "insufficient_escrow"  # a refund larger than what is held (as payments)
    ORDER_NOT_FOUND = "order_not_found"
    DOCUMENT_NOT_FOUND = "document_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    MESSAGE_TOO_LONG = "message_too_long"  # over ORDER_CONVERSATION["MAX_CHARACTERS"]
    MESSAGE_EMPTY = "message_empty"  # neither text nor a file
    MESSAGE_RATE_LIMITED = "message_rate_limited"  # too many messages from one user a minute
    MESSAGE_NOT_A_PARTY = "message_not_a_party"  # only the buyer and supplier post
    # The pre-shipment inspection (orders.inspection).
    INSPECTION_NOT_FOUND = "preshipment_inspection_not_found"
    INSPECTION_TOO_EARLY = "inspection_before_initial_payment"  # nothing paid, nothing to inspect
    INSPECTION_TOO_LATE = "inspection_too_close_to_deadline"  # fewer working days than the setting
    INSPECTION_COMPANY_NOT_APPROVED = "inspection_company_not_approved"
    INSPECTION_ALREADY_ACTIVE = "inspection_already_active"  # one at a time per order
    INSPECTION_FEE_NOT_DUE = "inspection_fee_not_due"
    SHIPMENT_BLOCKED_BY_INSPECTION = "shipment_blocked_by_inspection"
