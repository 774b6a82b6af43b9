"""Suppliers benchmarks: the directory page and the metrics recompute over their floors."""

from datetime import timedelta
from decimal import Decimal

from bench.micro import Benchmark

SUPPLIERS = 200
RECORDS = 500


def _directory_data() -> dict:
    from django.test import Client

    from accounts.models import Organisation
    from suppliers.models import Category, Product, Supplier, SupplierMetrics
    from tradeassure.core import clock

    if not Supplier.objects.filter(legal_name__startswith="Bench ").exists():
        category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        for n in range(SUPPLIERS):
            organisation = Organisation.objects.create(name=f"Bench {n}", kind="supplier")
            supplier = Supplier.objects.create(
                organisation=organisation, legal_name=f"Bench {n:03d}", country="CN"
            )
            supplier.categories.add(category)
            SupplierMetrics.objects.create(
                supplier=supplier, computed_at=clock.now(), window_days=180
            )
            Product.objects.bulk_create(
                Product(supplier=supplier, name=f"Part {n}-{k}", unit_price=Decimal("1.00"))
                for k in range(3)
            )
    return {"client": Client()}


def _directory(context: dict) -> None:
    response = context["client"].get("/suppliers/?q=Part&category=bench")
    assert response.status_code == 200


def _home(context: dict) -> None:
    """The floor: the home page, same chrome, no data."""
    assert context["client"].get("/").status_code == 200


def _records() -> dict:
    from accounts.models import Organisation
    from suppliers.models import Supplier, SupplierOrderRecord
    from tradeassure.core import clock

    organisation = Organisation.objects.create(name="Bench metrics", kind="supplier")
    supplier = Supplier.objects.create(
        organisation=organisation, legal_name="Bench metrics", country="CN"
    )
    now = clock.now()
    SupplierOrderRecord.objects.bulk_create(
        SupplierOrderRecord(
            supplier=supplier,
            order_reference=f"bench:{supplier.pk}:{n}",
            amount=Decimal("100.00"),
            currency="USD",
            amount_usd=Decimal("100.00"),
            status="completed",
            placed_at=now - timedelta(days=n % 170),
            confirmed_at=now - timedelta(days=n % 170) + timedelta(hours=5),
            shipment_deadline=now - timedelta(days=n % 170) + timedelta(days=20),
            shipped_at=now - timedelta(days=n % 170) + timedelta(days=15),
            rating=4,
            updated_at=now,
        )
        for n in range(RECORDS)
    )
    return {"supplier": supplier}


def _recompute(context: dict) -> None:
    from suppliers.services import supplier_metrics_recompute

    supplier_metrics_recompute(supplier=context["supplier"])


def _bare_aggregate(context: dict) -> None:
    """The floor: one SQL aggregate over the same rows."""
    from django.db.models import Avg, Count

    from suppliers.models import SupplierOrderRecord

    SupplierOrderRecord.objects.filter(supplier=context["supplier"]).aggregate(
        n=Count("pk"), rating=Avg("rating")
    )


BENCHMARKS = [
    Benchmark(
        name=f"filtered directory page, {SUPPLIERS} suppliers",
        setup=_directory_data,
        baseline=_home,
        subject=_directory,
        notes="constant queries; cost is rendering one page of 20",
    ),
    Benchmark(
        name=f"metrics recompute over {RECORDS} order records",
        setup=_records,
        baseline=_bare_aggregate,
        subject=_recompute,
        notes="Python-side median over the window rows",
    ),
]
