"""Beat tasks: thin wrappers over the deadline sweeps in orders.services (idempotent, retry-safe).

Each clears any backlog batch by batch until its soft time limit, then returns normally; the
rows left are the next beat run's (`tradeassure.core.sweeps.SWEEP_TASK_OPTIONS`)."""

from celery import shared_task

from orders import services
from tradeassure.core.sweeps import SWEEP_TASK_OPTIONS, run_to_time_limit


@shared_task(name="orders.sweep_confirmation_timeouts", **SWEEP_TASK_OPTIONS)
def sweep_confirmation_timeouts() -> int:
    return run_to_time_limit(services.orders_sweep_confirmation_timeouts)


@shared_task(name="orders.sweep_payment_timeouts", **SWEEP_TASK_OPTIONS)
def sweep_payment_timeouts() -> int:
    return run_to_time_limit(services.orders_sweep_payment_timeouts)


@shared_task(name="orders.sweep_shipment_deadlines", **SWEEP_TASK_OPTIONS)
def sweep_shipment_deadlines() -> int:
    return run_to_time_limit(services.orders_sweep_shipment_deadlines)


@shared_task(name="orders.sweep_receipt_windows", **SWEEP_TASK_OPTIONS)
def sweep_receipt_windows() -> int:
    return run_to_time_limit(services.orders_sweep_receipt_windows)


@shared_task(name="orders.sweep_post_delivery_windows", **SWEEP_TASK_OPTIONS)
def sweep_post_delivery_windows() -> int:
    return run_to_time_limit(services.orders_sweep_post_delivery_windows)


@shared_task(name="orders.sweep_preshipment_inspection_fees", **SWEEP_TASK_OPTIONS)
def sweep_preshipment_inspection_fees() -> int:
    from orders.inspection.services import preshipment_inspections_sweep_fees

    return run_to_time_limit(preshipment_inspections_sweep_fees)
