"""Error codes the suppliers app raises (profiles, vetting, Trade Assurance, order records)."""

from enum import StrEnum


class SupplierErrorCode(StrEnum):
    # Who may act.
    VETTING_ONLY = "vetting_only"
    NOT_SUPPLIER_STAFF = "not_supplier_staff"
    NOT_SUPPLIER = "not_supplier"
    # Profiles, verification and documents.
    PROFILE_EXISTS = "profile_exists"
    DOCUMENT_LOCKED = "document_locked"
    INVALID_VERIFICATION_TRANSITION = "invalid_verification_transition"
    NO_DOCUMENTS = "no_documents"
    CATEGORY_EXISTS = "category_exists"
    # Trade Assurance: status, applications and limits.
    INVALID_TA_TRANSITION = "invalid_ta_transition"
    APPLICATION_PENDING = "application_pending"
    ALREADY_DECIDED = "already_decided"
    APPLICATION_DECIDED = "application_decided"
    SUPPLIER_NOT_ELIGIBLE = "supplier_not_eligible"
    TRADE_ASSURANCE_LIMIT_EXCEEDED = "trade_assurance_limit_exceeded"
    # Amounts and the order records metrics are computed from.
    BAD_AMOUNT = "bad_amount"
    BAD_CURRENCY = "bad_currency"
    BAD_ORDER_STATUS = "bad_order_status"
    BAD_RATING = "bad_rating"
    BAD_REFERENCE = "bad_reference"
    RECORD_SUPPLIER_MISMATCH = "record_supplier_mismatch"
