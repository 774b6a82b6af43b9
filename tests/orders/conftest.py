import pytest

from orders.models import OrderStatus
from tests.factories import BuyerFactory, MediatorFactory
from tests.orders.factories import trade_assured_supplier
from tests.suppliers.factories import supplier_staff_for


@pytest.fixture(autouse=True)
def _orders_hook(settings):
    # The payments helper owns the default; make sure ours is registered in every test.
    if "orders.services.order_payment_captured" not in settings.PAYMENT_CAPTURED_HOOKS:
        settings.PAYMENT_CAPTURED_HOOKS = [
            *settings.PAYMENT_CAPTURED_HOOKS,
            "orders.services.order_payment_captured",
        ]


@pytest.fixture
def supplier(db):
    return trade_assured_supplier()


@pytest.fixture
def supplier_user(supplier):
    return supplier_staff_for(supplier)


@pytest.fixture
def buyer(db):
    return BuyerFactory()


@pytest.fixture
def mediator(db):
    return MediatorFactory()


S = OrderStatus
