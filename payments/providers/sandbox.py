"""The built-in sandbox provider: a pretend PSP that behaves like a real one.

Card payments are captured at once (test card numbers decline); bank transfers stay pending
until the transfer "arrives" (a button on the payment page in the demo, a service call in tests);
refunds and payouts complete a few seconds later. Every outcome is reported the way a real
provider does it: a signed webhook, delivered by a Celery task to the same handler the HTTP
endpoint uses.
"""

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from django.conf import settings

from payments.providers.base import (
    CreatedPayment,
    MalformedEvent,
    ProviderEventData,
    WebhookSignatureInvalid,
)

if TYPE_CHECKING:
    from payments.models import Payment, Payout, Refund

SIGNATURE_HEADER = "Sandbox-Signature"

# Test cards (any expiry in the future, any CVC). Any other Luhn-valid number is approved.
TEST_CARDS = {
    "4242424242424242": "",
    "5555555555554444": "",
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
}

EVENT_TYPES = {
    "payment.captured",
    "payment.failed",
    "refund.created",
    "refund.completed",
    "refund.failed",
    "payout.created",
    "payout.paid",
    "payout.failed",
}


def sign(body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> str:
    """The signature header value: t=<unix time>,v1=<HMAC-SHA256 of "t.body">."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = (secret or settings.SANDBOX_WEBHOOK_SECRET).encode()
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_body(
    event_type: str,
    reference: str,
    *,
    amount: Decimal | None = None,
    currency: str | None = None,
    charge_id: str = "",
    reason: str = "",
    event_id: str | None = None,
) -> dict:
    data: dict[str, str] = {"reference": reference}
    if amount is not None:
        data["amount"] = str(amount)
    if currency is not None:
        data["currency"] = currency
    if charge_id:
        data["charge_id"] = charge_id
    if reason:
        data["reason"] = reason
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created": int(time.time()),
        "data": data,
    }


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class SandboxProvider:
    name = "sandbox"

    # Delays (seconds) before the asynchronous webhooks, so a user sees "processing" first.
    REFUND_DELAY = 3
    PAYOUT_DELAY = 5

    def _send(self, event: dict, *, countdown: int = 0) -> None:
        from payments.tasks import sandbox_deliver_event

        sandbox_deliver_event.apply_async(args=[event], countdown=countdown)

    # --- the provider interface ---------------------------------------------------------
    def create_payment(self, *, payment: "Payment") -> CreatedPayment:
        reference = f"sbx_pay_{uuid.uuid4().hex}"
        if payment.method != "bank_transfer":
            return CreatedPayment(reference=reference)
        return CreatedPayment(
            reference=reference,
            instructions={
                "Beneficiary": "TradeAssure Escrow Ltd (sandbox)",
                "Bank": "Sandbox Bank plc, London",
                "IBAN": "GB00 SBOX 0000 0000 1234 56",
                "SWIFT/BIC": "SBOXGB2L",
                "Reference": payment.escrow.bank_reference,
            },
        )

    def refund(self, *, refund: "Refund") -> None:
        self._send(event_body("refund.created", refund.provider_reference))
        self._send(
            event_body(
                "refund.completed",
                refund.provider_reference,
                amount=refund.amount,
                currency=refund.currency,
            ),
            countdown=self.REFUND_DELAY,
        )

    def payout(self, *, payout: "Payout") -> None:
        self._send(event_body("payout.created", payout.provider_reference))
        self._send(
            event_body(
                "payout.paid",
                payout.provider_reference,
                amount=payout.amount,
                currency=payout.currency,
            ),
            countdown=self.PAYOUT_DELAY,
        )

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> None:
        header = headers.get(SIGNATURE_HEADER) or ""
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            raise WebhookSignatureInvalid("Missing or malformed signature header.") from None
        if abs(time.time() - timestamp) > settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookSignatureInvalid("Signature timestamp outside the tolerance window.")
        expected = sign(body, timestamp=timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise WebhookSignatureInvalid("Signature does not match.")

    def parse_event(self, *, body: bytes) -> ProviderEventData:
        try:
            raw = json.loads(body)
            data = raw["data"]
            event_type = raw["type"]
            event_id = str(raw["id"])
            reference = str(data["reference"])
            amount = Decimal(str(data["amount"])) if "amount" in data else None
        except (ValueError, KeyError, TypeError, InvalidOperation) as error:
            raise MalformedEvent(f"Not a sandbox event: {error}") from None
        if event_type not in EVENT_TYPES or not event_id or len(event_id) > 100:
            raise MalformedEvent(f"Unknown event type {event_type!r}.")
        if amount is not None and (not amount.is_finite() or amount <= 0):
            raise MalformedEvent("Event amount must be positive.")
        return ProviderEventData(
            event_id=event_id,
            type=event_type,
            object_reference=reference[:100],
            amount=amount,
            currency=data.get("currency"),
            charge_id=str(data.get("charge_id", ""))[:80],
            reason=str(data.get("reason", ""))[:200],
            raw=raw,
        )

    # --- sandbox-only controls (a real provider's hosted pages and banks do these) ----------
    def confirm_card(self, *, payment: "Payment", card_number: str) -> None:
        """Charge a card: approved numbers capture at once, test decline numbers fail."""
        decline = TEST_CARDS.get(card_number, "")
        # One charge per attempt: the same attempt handed over twice is the same charge.
        attempt = payment.card_attempt or uuid.uuid4().hex
        charge_id = (
            "ch_"
            + hashlib.sha256(f"{payment.provider_reference}:{attempt}".encode()).hexdigest()[:32]
        )
        if decline:
            self._send(
                event_body(
                    "payment.failed",
                    payment.provider_reference,
                    reason=decline,
                    charge_id=charge_id,
                )
            )
        else:
            self._send(
                event_body(
                    "payment.captured",
                    payment.provider_reference,
                    amount=payment.amount,
                    currency=payment.currency,
                    charge_id=charge_id,
                )
            )

    def transfer_arrive(self, *, payment: "Payment", amount: Decimal, currency: str) -> None:
        """A bank transfer quoting the payment's reference arrives (maybe of the wrong amount)."""
        self._send(
            event_body(
                "payment.captured",
                payment.provider_reference,
                amount=amount,
                currency=currency,
                charge_id=f"tt_{uuid.uuid4().hex}",
            )
        )
