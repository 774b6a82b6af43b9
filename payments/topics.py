"""The domain event topics the payments app publishes (listed by `tradeassure.platform.catalogue`)."""

from enum import StrEnum


class PaymentTopic(StrEnum):
    ESCROW_FROZEN = "escrow.frozen"
    ESCROW_UNFROZEN = "escrow.unfrozen"
    ESCROW_RELEASED = "escrow.released"
    ESCROW_REFUNDED = "escrow.refunded"
    PAYMENT_CAPTURED = "payment.captured"
    PAYOUT_REQUESTED = "payout.requested"
