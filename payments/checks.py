"""The production system check for money: no sandbox, no default secret, a complete provider.

Active under the production profile (settings.TRADEASSURE_PRODUCTION). `manage.py check`,
`migrate` and the WSGI application (tradeassure/wsgi.py) run it, so a misconfigured production
deployment refuses to start instead of taking pretend payments or forgeable webhooks.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

# Secrets that ship in the code (base settings, Dockerfile, docs): never valid in production.
_DEFAULT_SECRETS = {
    "SECRET_KEY": (
        "dev-only-insecure-key-change-me-in-production-0123456789abcdefghijklmnop",
        "collectstatic-only",
    ),
    "SANDBOX_WEBHOOK_SECRET": ("sandbox-webhook-secret-dev-only-0123456789",),
}


def production_payment_problems() -> tuple[list[Error], list[Warning]]:
    errors: list[Error] = []
    warnings: list[Warning] = []
    for name, defaults in _DEFAULT_SECRETS.items():
        value = getattr(settings, name, "")
        if value in defaults or str(value).startswith("dev-only"):
            errors.append(
                Error(f"{name} is a default value.", hint=f"Set {name}.", id="tradeassure.E101")
            )
    allow_sandbox = getattr(settings, "PAYMENTS_ALLOW_SANDBOX", False)
    for name in ("PAYMENT_PROVIDER", "PAYOUT_PROVIDER"):
        if getattr(settings, name, "") == "sandbox" and not allow_sandbox:
            errors.append(
                Error(
                    f"{name} is the sandbox: it takes pretend payments.",
                    hint=f"Set {name} (e.g. PAYMENT_PROVIDER=stripe, PAYOUT_PROVIDER=manual); "
                    "PAYMENTS_ALLOW_SANDBOX=true only for a demo stack that moves no money.",
                    id="tradeassure.E102",
                )
            )
    if settings.PAYOUT_PROVIDER == "stripe":
        errors.append(
            Error(
                "Stripe does not pay suppliers here.",
                hint="PAYOUT_PROVIDER=manual",
                id="tradeassure.E103",
            )
        )
    if settings.PAYMENT_PROVIDER == "stripe":
        for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
            if not getattr(settings, name, ""):
                errors.append(
                    Error(f"{name} is not set.", hint=f"Set {name}.", id="tradeassure.E104")
                )
        if settings.STRIPE_API_BASE:
            errors.append(
                Error(
                    "STRIPE_API_BASE points the Stripe SDK away from Stripe.",
                    hint="Unset STRIPE_API_BASE in production (it is for tests).",
                    id="tradeassure.E105",
                )
            )
        if settings.STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_")):
            warnings.append(
                Warning(
                    "STRIPE_SECRET_KEY is a test-mode key: no real money moves.",
                    id="tradeassure.W101",
                )
            )
    return errors, warnings


@register(Tags.security)
def production_payments_check(app_configs=None, **kwargs) -> list:
    if not getattr(settings, "TRADEASSURE_PRODUCTION", False):
        return []
    errors, warnings = production_payment_problems()
    return [*errors, *warnings]
