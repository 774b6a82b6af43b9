"""Thin Celery tasks: take ids, call a service; safe to run twice."""

from celery import shared_task

from suppliers import services
from suppliers.models import Supplier
from tradeassure.core.sweeps import SWEEP_TASK_OPTIONS, run_to_time_limit


@shared_task(name="suppliers.recompute_supplier_metrics", acks_late=True)
def recompute_supplier_metrics(supplier_id: int) -> None:
    supplier = Supplier.objects.filter(pk=supplier_id).first()
    if supplier is not None:
        services.supplier_metrics_recompute(supplier=supplier)


@shared_task(name="suppliers.recompute_all_metrics", acks_late=True)
def recompute_all_metrics() -> int:
    return services.supplier_metrics_recompute_all()


@shared_task(name="suppliers.recompute_suppliers_metrics", acks_late=True)
def recompute_suppliers_metrics(supplier_ids: list[int]) -> None:
    """One message for a batch of suppliers (a sweep's batch), not one per order."""
    services.supplier_metrics_recompute_many(supplier_ids=supplier_ids)


@shared_task(name="suppliers.sweep_memberships", **SWEEP_TASK_OPTIONS)
def sweep_memberships() -> int:
    """Daily: lapsed memberships and revoked verifications, and the expiry warnings."""
    return run_to_time_limit(services.suppliers_sweep_memberships)
