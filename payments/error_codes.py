"""Error codes the payments app raises (escrow, the ledger, payments, payouts, provider webhooks)."""

from enum import StrEnum


class PaymentErrorCode(StrEnum):
    # Amounts and currencies.
    INVALID_AMOUNT = "invalid_amount"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    CURRENCY_MISMATCH = "currency_mismatch"
    # Escrow and the ledger.
    ESCROW_NOT_FOUND = "escrow_not_found"
    ESCROW_FROZEN = "escrow_frozen"
    ESCROW_MISMATCH = "escrow_mismatch"
    INSUFFICIENT_ESCROW = "insufficient_escrow"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    IDEMPOTENCY_KEY_MISSING = "idempotency_key_missing"
    # Payments by the buyer.
    INVALID_PURPOSE = "invalid_purpose"
    INVALID_METHOD = "invalid_method"
    NOT_PAYER = "not_payer"
    INVALID_URL = "invalid_url"
    PAYMENT_NOT_FOUND = "payment_not_found"
    WRONG_METHOD = "wrong_method"
    ALREADY_PAID = "already_paid"
    INVALID_CARD = "invalid_card"
    NOT_SANDBOX = "not_sandbox"
    # Provider webhooks.
    UNKNOWN_PROVIDER = "unknown_provider"
    INVALID_SIGNATURE = "invalid_signature"
    MALFORMED_EVENT = "malformed_event"
