"""Capture hooks used by tests (settings.PAYMENT_CAPTURED_HOOKS points here)."""

from payments import services

CALLS: list = []


def record(*, payment) -> None:
    CALLS.append((payment.pk, payment.status, payment.amount))


def refund_everything(*, payment) -> None:
    """What orders does when an order can no longer take the money: refund it at once."""
    services.escrow_refund(
        escrow_reference=payment.escrow.reference,
        amount=payment.amount,
        idempotency_key=f"hook-refund:{payment.pk}",
        reason="Order cancelled before the payment arrived.",
    )


def refuse(*, payment) -> None:
    """A hook that breaks its contract (raises): the capture must roll back, to be retried."""
    from tradeassure.core.errors import Conflict

    raise Conflict("Not now.", code="hook_refused")
