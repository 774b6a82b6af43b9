from django.conf import settings
from django.utils.module_loading import import_string

from payments.providers.base import PaymentProvider

PROVIDERS = {
    "sandbox": "payments.providers.sandbox.SandboxProvider",
    "stripe": "payments.providers.stripe.StripeProvider",
    # Payouts only: staff pay suppliers by bank transfer and record the reference.
    "manual": "payments.providers.manual.ManualPayoutProvider",
}


def provider_get(name: str | None = None) -> PaymentProvider:
    """The configured provider adapter (settings.PAYMENT_PROVIDER), or the one named."""
    name = name or settings.PAYMENT_PROVIDER
    path = {**PROVIDERS, **getattr(settings, "PAYMENT_PROVIDER_ADAPTERS", {})}.get(name)
    if path is None:
        raise LookupError(f"Unknown payment provider {name!r}.")
    return import_string(path)()
