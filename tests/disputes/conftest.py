import pytest

from tests.disputes.factories import Parties, parties_for
from tests.factories import MediatorFactory


@pytest.fixture(autouse=True)
def _capture_hooks(settings):
    """The orders and disputes capture hooks are registered in every test (settings own them)."""
    hooks = list(settings.PAYMENT_CAPTURED_HOOKS)
    for hook in (
        "orders.services.order_payment_captured",
        "disputes.services.dispute_inspection_fee_captured",
    ):
        if hook not in hooks:
            hooks.append(hook)
    settings.PAYMENT_CAPTURED_HOOKS = hooks


@pytest.fixture
def mediator(db):
    return MediatorFactory()


@pytest.fixture
def delivered(db) -> Parties:
    """A post-delivery order the buyer has received (claim window open), fully paid."""
    return parties_for("delivered")


@pytest.fixture
def late(db) -> Parties:
    """A paid order (initial payment only) whose shipment deadline has passed."""
    return parties_for("late")
