"""The team tests run with every payment-captured hook and empty rate-limit buckets."""

from tests.captured_hooks import _fresh_throttle_counters, _payment_captured_hooks  # noqa: F401
