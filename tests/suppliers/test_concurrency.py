"""Two orders placed at the same moment cannot both squeeze under the limit (PostgreSQL, threads)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from suppliers.models import SupplierOrderRecord
from suppliers.services import supplier_assert_can_take_order, supplier_order_record_sync
from tests.suppliers.factories import TradeAssuredSupplierFactory
from tradeassure.core import clock
from tradeassure.core.errors import Unprocessable


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_respect_the_limit():
    # given a 10,000 USD limit and two 6,000 USD orders arriving at once
    supplier = TradeAssuredSupplierFactory()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def place(reference: str) -> None:
        try:
            barrier.wait(timeout=5)
            with transaction.atomic():
                supplier_assert_can_take_order(
                    supplier=supplier, amount=Decimal("6000.00"), currency="USD"
                )
                supplier_order_record_sync(
                    supplier=supplier,
                    order_reference=reference,
                    amount=Decimal("6000.00"),
                    currency="USD",
                    status="open",
                    placed_at=clock.now(),
                )
            outcomes.append("accepted")
        except Unprocessable as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=place, args=(f"order:{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    # then exactly one is accepted and the other is refused for the limit
    assert sorted(outcomes) == ["accepted", "trade_assurance_limit_exceeded"]
    assert SupplierOrderRecord.objects.filter(supplier=supplier).count() == 1
