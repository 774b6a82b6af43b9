import pytest


@pytest.fixture(autouse=True)
def _payment_captured_hooks(settings):
    """A captured payment moves its order on (the apps register this hook)."""
    hooks = list(settings.PAYMENT_CAPTURED_HOOKS)
    for hook in (
        "orders.services.order_payment_captured",
        "disputes.services.dispute_inspection_fee_captured",
    ):
        if hook not in hooks:
            hooks.append(hook)
    settings.PAYMENT_CAPTURED_HOOKS = hooks


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    from django.core.cache import cache

    cache.clear()
