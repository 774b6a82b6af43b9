"""Beat tasks: thin wrappers over the deadline sweeps in orders.services (idempotent, retry-safe)."""

from celery import shared_task

from orders import services


@shared_task(name="orders.sweep_confirmation_timeouts", acks_late=True)
def sweep_confirmation_timeouts() -> int:
    return services.orders_sweep_confirmation_timeouts()


@shared_task(name="orders.sweep_payment_timeouts", acks_late=True)
def sweep_payment_timeouts() -> int:
    return services.orders_sweep_payment_timeouts()


@shared_task(name="orders.sweep_shipment_deadlines", acks_late=True)
def sweep_shipment_deadlines() -> int:
    return services.orders_sweep_shipment_deadlines()


@shared_task(name="orders.sweep_receipt_windows", acks_late=True)
def sweep_receipt_windows() -> int:
    return services.orders_sweep_receipt_windows()


@shared_task(name="orders.sweep_post_delivery_windows", acks_late=True)
def sweep_post_delivery_windows() -> int:
    return services.orders_sweep_post_delivery_windows()
