"""Thin Celery tasks: take ids, call a service; safe to run twice."""

from celery import shared_task

from suppliers import services
from suppliers.models import Supplier


@shared_task(name="suppliers.recompute_supplier_metrics", acks_late=True)
def recompute_supplier_metrics(supplier_id: int) -> None:
    supplier = Supplier.objects.filter(pk=supplier_id).first()
    if supplier is not None:
        services.supplier_metrics_recompute(supplier=supplier)


@shared_task(name="suppliers.recompute_all_metrics", acks_late=True)
def recompute_all_metrics() -> int:
    return services.supplier_metrics_recompute_all()


@shared_task(name="suppliers.sweep_memberships", acks_late=True)
def sweep_memberships() -> int:
    return services.suppliers_sweep_memberships()
