"""Autouse fixtures shared by the API and team tests (each directory's conftest imports them):
every app's payment-captured hook registered, and empty rate-limit buckets per test."""

import pytest


@pytest.fixture(autouse=True)
def _payment_captured_hooks(settings):
    """A captured payment moves its order on; an inspection fee its dispute (apps register these)."""
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
    """Rate-limit buckets live in the cache; ids repeat across tests, so start each empty."""
    from django.core.cache import cache

    cache.clear()
