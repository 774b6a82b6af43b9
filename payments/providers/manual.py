"""The `manual` payout adapter: operators pay suppliers by bank transfer outside the system.

A payout request moves the supplier's payable to payouts in transit as usual; nothing is sent
anywhere. Staff see the payouts waiting in the admin (Payouts, provider "manual", status
requested), make the transfer at their bank, and record the bank's reference there
(`payments.services.payout_manual_settle`), which settles the payout in the ledger. Nothing is
marked paid without a reference. It takes no payments and receives no webhooks.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING

from payments.error_codes import PaymentErrorCode
from payments.providers.base import CreatedPayment, ProviderEventData, WebhookSignatureInvalid
from tradeassure.core.errors import Unprocessable

if TYPE_CHECKING:
    from payments.models import Payment, Payout, Refund


class ManualPayoutProvider:
    name = "manual"

    def create_payment(self, *, payment: "Payment") -> CreatedPayment:
        raise Unprocessable(
            "The manual adapter only pays suppliers.", code=PaymentErrorCode.NOT_A_PAYMENT_PROVIDER
        )

    def refund(self, *, refund: "Refund") -> ProviderEventData | None:
        raise Unprocessable(
            "The manual adapter only pays suppliers.", code=PaymentErrorCode.NOT_A_PAYMENT_PROVIDER
        )

    def payout(self, *, payout: "Payout") -> None:
        """Nothing to send: staff pay it at their bank and record the reference."""

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> None:
        raise WebhookSignatureInvalid("The manual adapter receives no webhooks.")

    def parse_event(self, *, body: bytes) -> ProviderEventData:
        raise WebhookSignatureInvalid("The manual adapter receives no webhooks.")
