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
    ESCROW_ON_HOLD = "escrow_on_hold"
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
    PAYMENT_ALREADY_SUBMITTED = "payment_already_submitted"
    INVALID_CARD = "invalid_card"
    NOT_SANDBOX = "not_sandbox"
    # Provider webhooks.
    UNKNOWN_PROVIDER = "unknown_provider"
    INVALID_SIGNATURE = "invalid_signature"
    MALFORMED_EVENT = "malformed_event"
    # The Stripe adapter, manual payouts.
    WRONG_PROVIDER = "wrong_provider"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    BANK_REFERENCE_REQUIRED = "bank_reference_required"
    PAYOUT_NOT_FOUND = "payout_not_found"
    PAYOUT_FINAL = "payout_final"
    NOT_UNDER_REVIEW = "not_under_review"
    CARD_DECLINED = "card_declined"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PAYMENT_METHOD_UNAVAILABLE = "payment_method_unavailable"
    REFUND_EXCEEDS_PAYMENTS = "refund_exceeds_payments"
    PAYOUT_PROVIDER_UNSUPPORTED = "payout_provider_unsupported"
    NOT_A_PAYMENT_PROVIDER = "not_a_payment_provider"
