"""Thin Celery tasks: each calls a sweep service (idempotent, batched, safe to run twice)."""

from celery import shared_task

from disputes import services


@shared_task(name="disputes.sweep_escalations", acks_late=True)
def sweep_escalations() -> int:
    return services.disputes_sweep_escalations()


@shared_task(name="disputes.sweep_evidence_requests", acks_late=True)
def sweep_evidence_requests() -> int:
    return services.disputes_sweep_evidence_requests()


@shared_task(name="disputes.sweep_inspection_fees", acks_late=True)
def sweep_inspection_fees() -> int:
    return services.disputes_sweep_inspection_fees()
