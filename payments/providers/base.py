"""The payment provider interface: what an adapter for a real PSP implements.

The app calls the provider to start payments, refunds and payouts; the provider answers later
through signed webhooks, which the app verifies (`verify_webhook`), normalises (`parse_event`)
and applies once per event id. Nothing here touches the ledger: only payments.services does.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tradeassure.core.errors import DomainError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from payments.models import Payment, Payout, Refund


class WebhookSignatureInvalid(Exception):
    """The webhook was not signed by the provider (or is too old): reject it with 400."""


class MalformedEvent(Exception):
    """The webhook body is not an event this adapter understands."""


class EventNotUsed(Exception):
    """A genuine provider event the app does not act on (acknowledged with 200, stored as
    ignored), so the provider does not retry it or disable the endpoint."""


class PaymentDeclined(DomainError):
    """The provider declined the card: nothing was charged (402 in the API, a form error)."""

    status = 402
    code = "card_declined"
    title = "The payment was declined."


class ProviderUnavailable(DomainError):
    """The provider could not be reached (after retries): nothing was recorded; try again."""

    status = 503
    code = "provider_unavailable"
    title = "The payment provider is not answering."


@dataclass(frozen=True)
class CreatedPayment:
    reference: str  # the provider's id for the payment; webhooks quote it
    instructions: dict[str, str] = field(default_factory=dict)  # e.g. bank details for T/T


@dataclass(frozen=True)
class ProviderEventData:
    """A provider webhook event in the app's vocabulary.

    `type` is one of: payment.captured, payment.failed, refund.created, refund.completed,
    refund.failed, payout.created, payout.paid, payout.failed. `object_reference` is the
    payment/refund/payout reference the app gave or got; `charge_id` identifies one movement of
    money into the provider (two transfers for one payment have two charge ids).
    """

    event_id: str
    type: str
    object_reference: str
    amount: Decimal | None = None
    currency: str | None = None
    charge_id: str = ""
    reason: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class PaymentProvider(Protocol):
    name: str

    def create_payment(self, *, payment: "Payment") -> CreatedPayment:
        """Register a payment to be made (card session, or bank transfer instructions)."""

    def refund(self, *, refund: "Refund") -> "ProviderEventData | None":
        """Ask the provider to send `refund.amount` back to the payer (idempotent by
        `refund.provider_reference`); completion arrives as a webhook. An adapter whose API
        answers with the refund's status returns it as a ProviderEventData (applied like an
        event, once by its event id)."""

    def payout(self, *, payout: "Payout") -> None:
        """Ask the provider to pay the supplier (idempotent by `payout.provider_reference`)."""

    def verify_webhook(self, *, body: bytes, headers: "Mapping[str, str]") -> None:
        """Raise WebhookSignatureInvalid unless the body was signed by the provider."""

    def parse_event(self, *, body: bytes) -> ProviderEventData:
        """Turn a verified webhook body into a ProviderEventData, or raise MalformedEvent."""


class CardConfirmingProvider(PaymentProvider, Protocol):
    """An adapter that hosts the card page itself (the sandbox): the app hands it the number."""

    def confirm_card(self, *, payment: "Payment", card_number: str) -> None:
        """Charge the card; the outcome arrives as a payment.captured or payment.failed event."""


@runtime_checkable
class BrowserCardProvider(PaymentProvider, Protocol):
    """An adapter whose card form runs in the browser (Stripe.js): the page gets a client secret,
    the API confirms with a payment method id, and the capture still arrives by webhook."""

    def client_secret(self, *, payment: "Payment") -> str:
        """The secret the browser confirms this payment with (read from the provider)."""

    def confirm_card(self, *, payment: "Payment", payment_method: str) -> str:
        """Confirm with a payment method created in the browser; returns the provider's status."""
