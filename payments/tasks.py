"""Thin Celery tasks: deliver sandbox webhooks, resend stuck provider requests, check the ledger."""

from celery import shared_task
from django.db import OperationalError


# A deadlock or serialization failure rolls the whole event back (nothing stored), so retrying
# is safe; a real provider retries a non-2xx answer the same way.
@shared_task(
    name="payments.sandbox_deliver_event",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    max_retries=6,
)
def sandbox_deliver_event(event: dict) -> str:
    """Sign a sandbox event and hand it to the same verifying handler the HTTP endpoint uses."""
    from payments.providers.sandbox import deliver_event

    return deliver_event(event)


@shared_task(name="payments.provider_refund_request", acks_late=True)
def provider_refund_request(refund_id: int) -> None:
    from payments.services import refund_send_to_provider

    refund_send_to_provider(refund_id=refund_id)


@shared_task(name="payments.provider_payout_request", acks_late=True)
def provider_payout_request(payout_id: int) -> None:
    from payments.services import payout_send_to_provider

    payout_send_to_provider(payout_id=payout_id)


@shared_task(name="payments.resend_stuck_requests", acks_late=True)
def resend_stuck_requests() -> int:
    from payments.services import provider_requests_resend_stuck

    return provider_requests_resend_stuck()


@shared_task(name="payments.ledger_check", acks_late=True)
def ledger_check() -> bool:
    from payments.services import ledger_check_run

    return ledger_check_run().ok
