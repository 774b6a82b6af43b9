"""The Stripe adapter: card payments as PaymentIntents, refunds through the Refunds API.

Money is recorded only from what Stripe says: captures from verified `payment_intent.succeeded`
webhooks, refunds from the Refunds API's answers and `refund.*` webhooks. Every write carries an
idempotency key derived from the app's own key, so a retry (ours, or the SDK's on network errors
and 5xx, with backoff) never charges or refunds twice. Supplier payouts are not Stripe's job here
(no Connect): they go through the payout adapter named by PAYOUT_PROVIDER (e.g. `manual`).

Configuration (settings, from the environment): STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY,
STRIPE_WEBHOOK_SECRET, STRIPE_API_BASE (tests point it at a local Stripe-compatible server),
STRIPE_MAX_NETWORK_RETRIES, PAYMENT_WEBHOOK_TOLERANCE_SECONDS.
"""

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings

from payments.error_codes import PaymentErrorCode
from payments.providers.base import (
    CreatedPayment,
    EventNotUsed,
    MalformedEvent,
    PaymentDeclined,
    ProviderEventData,
    ProviderUnavailable,
    WebhookSignatureInvalid,
)
from tradeassure.core.errors import Unprocessable
from tradeassure.core.money import MINOR_UNITS

if TYPE_CHECKING:
    from payments.models import Payment, Payout, Refund

SIGNATURE_HEADER = "Stripe-Signature"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
# What the webhook endpoint must be subscribed to (README "Stripe").
WEBHOOK_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "refund.created",
    "refund.updated",
    "refund.failed",
)
# Stripe refund status -> the app's refund event vocabulary.
REFUND_STATUS_EVENT = {
    "pending": "refund.created",
    "requires_action": "refund.created",
    "succeeded": "refund.completed",
    "failed": "refund.failed",
    "canceled": "refund.failed",
}


def to_minor(amount: Decimal, currency: str) -> int:
    """Stripe amounts are integers in the currency's smallest unit (JPY has none below 1)."""
    places = MINOR_UNITS[currency.upper()]
    minor = amount.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} has more than {places} decimal places in {currency}.")
    return int(minor)


def from_minor(minor: int, currency: str) -> Decimal:
    places = MINOR_UNITS[currency.upper()]
    return (Decimal(int(minor)).scaleb(-places)).quantize(Decimal(1).scaleb(-places))


def idempotency_key(*parts: str) -> str:
    """A Stripe idempotency key (at most 255 characters) derived from the app's own keys."""
    text = ":".join(("tradeassure", *parts))
    if len(text) <= 200:
        return text
    return "tradeassure:" + hashlib.sha256(text.encode()).hexdigest()


def _id(value: Any) -> str:
    """An expandable field: Stripe sends an id; some servers send the object."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


@dataclass(frozen=True)
class ProviderObject:
    """One payment or refund as the provider has it (for reconciliation)."""

    kind: str  # "payment" | "refund"
    id: str
    reference: str  # the app's reference: the payment intent id, or our refund reference
    amount: Decimal
    currency: str
    status: str  # in the app's vocabulary: captured/pending/failed, completed/processing/failed
    created: int


class StripeProvider:
    name = "stripe"
    # Refund status is read back from the API (the resend sweep asks again until final).
    polls_refund_status = True

    def __init__(self) -> None:
        base = settings.STRIPE_API_BASE
        self.client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY or "sk_missing",
            base_addresses={"api": base} if base else None,
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        )

    # --- helpers ----------------------------------------------------------------------------
    def _call(self, function, *args, **kwargs):
        """One API call: network failures and 5xx (after the SDK's retries) become a 503
        for the caller; a decline becomes PaymentDeclined; other Stripe errors propagate."""
        try:
            return function(*args, **kwargs)
        except stripe.CardError as error:
            raise PaymentDeclined(
                error.user_message or "Your card was declined.",
                code=PaymentErrorCode.CARD_DECLINED,
                fields={"decline_code": [str(error.code or "card_declined")]},
            ) from None
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise ProviderUnavailable(
                f"Stripe could not be reached: {error.user_message or error}",
                code=PaymentErrorCode.PROVIDER_UNAVAILABLE,
            ) from None
        except stripe.APIError as error:
            if (error.http_status or 500) >= 500:
                raise ProviderUnavailable(
                    "Stripe is not answering right now; try again shortly.",
                    code=PaymentErrorCode.PROVIDER_UNAVAILABLE,
                ) from None
            raise

    def payment_intent(self, reference: str) -> dict:
        return self._call(self.client.v1.payment_intents.retrieve, reference).to_dict()

    # --- the provider interface ---------------------------------------------------------
    def create_payment(self, *, payment: "Payment") -> CreatedPayment:
        if payment.method != "card":
            raise Unprocessable(
                "Bank transfers are not available with this payment provider; pay by card.",
                code=PaymentErrorCode.PAYMENT_METHOD_UNAVAILABLE,
            )
        intent = self._call(
            self.client.v1.payment_intents.create,
            {
                "amount": to_minor(payment.amount, payment.currency),
                "currency": payment.currency.lower(),
                "payment_method_types": ["card"],
                "capture_method": "automatic",
                "metadata": {
                    "escrow_reference": payment.escrow.reference,
                    "purpose": payment.purpose,
                    "ta_payment": str(payment.public_id),
                },
            },
            {"idempotency_key": idempotency_key("payment", payment.idempotency_key)},
        )
        return CreatedPayment(reference=intent.id)

    def client_secret(self, *, payment: "Payment") -> str:
        """What Stripe.js needs to confirm the card in the browser (never stored)."""
        return str(self.payment_intent(payment.provider_reference).get("client_secret") or "")

    def confirm_card(self, *, payment: "Payment", payment_method: str) -> str:
        """Confirm a PaymentIntent with a payment method created by Stripe.js (or a partner's
        own Stripe integration). Raises PaymentDeclined; success is recorded by the webhook.
        Returns Stripe's status (e.g. "succeeded", "processing", "requires_action")."""
        intent = self._call(
            self.client.v1.payment_intents.confirm,
            payment.provider_reference,
            {"payment_method": payment_method},
            {
                "idempotency_key": idempotency_key(
                    "confirm", payment.provider_reference, payment_method
                )
            },
        )
        return str(intent.status)

    def _refund_sources(self, refund: "Refund") -> list[tuple[str, Decimal]]:
        """The payment intents a refund may draw on, oldest first, with what was paid."""
        from payments.models import Payment, Refund

        payments = Payment.objects.filter(
            escrow_id=refund.escrow_id, provider=self.name, status=Payment.Status.CAPTURED
        ).order_by("id")
        if refund.kind == Refund.Kind.INSPECTION_FEE:
            payments = payments.filter(purpose__in=Payment.INSPECTION_FEE_PURPOSES)
        elif refund.kind == Refund.Kind.UNAPPLIED_RETURN:
            transfer = getattr(refund, "unapplied_transfer", None)
            payments = (
                Payment.objects.filter(pk=transfer.payment_id)
                if transfer is not None and transfer.payment_id is not None
                else Payment.objects.none()
            )
        else:
            payments = payments.exclude(purpose__in=Payment.INSPECTION_FEE_PURPOSES)
        return [(p.provider_reference, p.amount) for p in payments]

    def refund(self, *, refund: "Refund") -> ProviderEventData | None:
        """Refund through the Refunds API, split across the order's payment intents if one is
        not enough. Safe to repeat: existing parts are found by metadata (and idempotency keys
        cover a crash between create and record). Returns the refund's state as Stripe reports
        it, for the service to apply like an event."""
        currency = refund.currency
        wanted = to_minor(refund.amount, currency)
        parts: list[dict] = []
        capacity: list[tuple[str, int]] = []
        for intent_id, paid in self._refund_sources(refund):
            existing = self._call(
                self.client.v1.refunds.list, {"payment_intent": intent_id, "limit": 100}
            )
            used = 0
            for item in existing.auto_paging_iter():
                data = item.to_dict()
                if data.get("status") in ("failed", "canceled"):
                    if (data.get("metadata") or {}).get(
                        "ta_reference"
                    ) == refund.provider_reference:
                        parts.append(data)
                    continue
                used += int(data["amount"])
                if (data.get("metadata") or {}).get("ta_reference") == refund.provider_reference:
                    parts.append(data)
            capacity.append((intent_id, to_minor(paid, currency) - used))
        done = sum(int(p["amount"]) for p in parts if p.get("status") not in ("failed", "canceled"))
        missing = wanted - done
        plan: list[tuple[str, int]] = []
        for intent_id, free in capacity:
            if missing <= 0:
                break
            if free <= 0 or any(_id(p.get("payment_intent")) == intent_id for p in parts):
                continue
            take = min(free, missing)
            plan.append((intent_id, take))
            missing -= take
        if missing > 0:
            raise Unprocessable(
                f"Stripe holds too little to refund {refund.amount} {currency} for "
                f"{refund.escrow.reference}.",
                code=PaymentErrorCode.REFUND_EXCEEDS_PAYMENTS,
            )
        count = str(len(parts) + len(plan))
        for intent_id, amount in plan:
            created = self._call(
                self.client.v1.refunds.create,
                {
                    "payment_intent": intent_id,
                    "amount": amount,
                    "metadata": {
                        "ta_reference": refund.provider_reference,
                        "ta_parts": count,
                        "escrow_reference": refund.escrow.reference,
                    },
                },
                {
                    "idempotency_key": idempotency_key(
                        "refund", refund.provider_reference, intent_id
                    )
                },
            )
            parts.append(created.to_dict())
        statuses = {p.get("status") for p in parts}
        if statuses & {"failed", "canceled"}:
            event_type = "refund.failed"
        elif statuses == {"succeeded"}:
            event_type = "refund.completed"
        else:
            event_type = "refund.created"
        reason = "; ".join(
            str(p.get("failure_reason") or "") for p in parts if p.get("failure_reason")
        )
        return ProviderEventData(
            event_id=f"api:{refund.provider_reference}:{event_type}",
            type=event_type,
            object_reference=refund.provider_reference,
            amount=refund.amount,
            currency=currency,
            reason=reason[:200],
            raw={"source": "refunds_api", "refunds": [p.get("id") for p in parts]},
        )

    def payout(self, *, payout: "Payout") -> None:
        raise Unprocessable(
            "Stripe does not pay suppliers here; set PAYOUT_PROVIDER=manual.",
            code=PaymentErrorCode.PAYOUT_PROVIDER_UNSUPPORTED,
        )

    def verify_webhook(self, *, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"),
                headers.get(SIGNATURE_HEADER),
                settings.STRIPE_WEBHOOK_SECRET,
                tolerance=settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
            raise WebhookSignatureInvalid(f"Stripe signature refused: {error}") from None

    def parse_event(self, *, body: bytes) -> ProviderEventData:
        try:
            raw = json.loads(body)
            event_id = str(raw["id"])
            stripe_type = str(raw["type"])
            obj = raw["data"]["object"]
            if not isinstance(obj, dict):
                raise TypeError("data.object is not an object")
        except (ValueError, KeyError, TypeError) as error:
            raise MalformedEvent(f"Not a Stripe event: {error}") from None
        if not event_id.startswith("evt_") or len(event_id) > 100:
            raise MalformedEvent("Not a Stripe event id.")
        if stripe_type not in WEBHOOK_EVENTS:
            raise EventNotUsed(f"Stripe event type {stripe_type} is not used.")
        try:
            currency = str(obj["currency"]).upper()
            currency_ok = currency in MINOR_UNITS
            if stripe_type.startswith("payment_intent."):
                # Stripe documents amount_received as what was captured; fall back to amount.
                received = obj.get("amount_received")
                minor = int(received) if received else int(obj["amount"])
                last_error = obj.get("last_payment_error") or {}
                return ProviderEventData(
                    event_id=event_id,
                    type="payment.captured"
                    if stripe_type == "payment_intent.succeeded"
                    else "payment.failed",
                    object_reference=str(obj["id"])[:100],
                    amount=from_minor(minor, currency) if currency_ok else Decimal(int(minor)),
                    currency=currency,
                    charge_id=_id(obj.get("latest_charge"))[:80],
                    reason=str(last_error.get("message") or "")[:200],
                    raw=raw,
                )
            metadata = obj.get("metadata") or {}
            reference = str(metadata.get("ta_reference") or "")
            if not reference:
                raise EventNotUsed("A refund TradeAssure did not make.")
            event_type = REFUND_STATUS_EVENT.get(str(obj.get("status")), "refund.created")
            if stripe_type == "refund.failed":
                event_type = "refund.failed"
            if event_type != "refund.failed" and str(metadata.get("ta_parts") or "1") != "1":
                # One part of a split refund: the whole is read back from the API.
                event_type = "refund.created"
            return ProviderEventData(
                event_id=event_id,
                type=event_type,
                object_reference=reference[:100],
                amount=from_minor(obj["amount"], currency) if currency_ok else None,
                currency=currency,
                reason=str(obj.get("failure_reason") or "")[:200],
                raw=raw,
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise MalformedEvent(f"Stripe event {event_id} lacks {error}.") from None

    # --- reconciliation ----------------------------------------------------------------------
    def provider_objects(self, *, since: datetime, until: datetime) -> Iterator[ProviderObject]:
        """Every PaymentIntent and refund created in [since, until), as the provider has it."""
        # Stripe's `created` is in whole seconds: widen to the seconds that hold the period.
        created = {"gte": math.floor(since.timestamp()), "lt": math.ceil(until.timestamp())}
        intents = self._call(
            self.client.v1.payment_intents.list, {"created": created, "limit": 100}
        )
        for item in intents.auto_paging_iter():
            data = item.to_dict()
            currency = str(data["currency"]).upper()
            status = {"succeeded": "captured", "canceled": "failed"}.get(data["status"], "pending")
            minor = data.get("amount_received") or data["amount"]
            yield ProviderObject(
                "payment",
                data["id"],
                data["id"],
                from_minor(minor, currency),
                currency,
                status,
                int(data["created"]),
            )
        refunds = self._call(self.client.v1.refunds.list, {"created": created, "limit": 100})
        for item in refunds.auto_paging_iter():
            data = item.to_dict()
            currency = str(data["currency"]).upper()
            event = REFUND_STATUS_EVENT.get(data.get("status"), "refund.created")
            yield ProviderObject(
                "refund",
                data["id"],
                str((data.get("metadata") or {}).get("ta_reference") or ""),
                from_minor(data["amount"], currency),
                currency,
                {"refund.completed": "completed", "refund.failed": "failed"}.get(
                    event, "processing"
                ),
                int(data["created"]),
            )
