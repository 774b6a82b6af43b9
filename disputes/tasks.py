"""Thin Celery tasks: each calls a sweep service (idempotent, batched, safe to run twice).

Each clears any backlog until its soft time limit, then returns normally; the rows left are the
next beat run's (`tradeassure.core.sweeps.SWEEP_TASK_OPTIONS`)."""

from celery import shared_task

from disputes import services
from tradeassure.core.sweeps import SWEEP_TASK_OPTIONS, run_to_time_limit


@shared_task(name="disputes.sweep_escalations", **SWEEP_TASK_OPTIONS)
def sweep_escalations() -> int:
    return run_to_time_limit(services.disputes_sweep_escalations)


@shared_task(name="disputes.sweep_evidence_requests", **SWEEP_TASK_OPTIONS)
def sweep_evidence_requests() -> int:
    return run_to_time_limit(services.disputes_sweep_evidence_requests)


@shared_task(name="disputes.sweep_inspection_fees", **SWEEP_TASK_OPTIONS)
def sweep_inspection_fees() -> int:
    return run_to_time_limit(services.disputes_sweep_inspection_fees)
