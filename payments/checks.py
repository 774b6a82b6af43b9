"""The production system check for money: no sandbox, no default secret, a complete provider,
consistent currency tables.

Active under the production profile (settings.TRADEASSURE_PRODUCTION). `manage.py check`,
`migrate` and the WSGI application (tradeassure/wsgi.py) run it, so a misconfigured production
deployment refuses to start instead of taking pretend payments or forgeable webhooks.
"""

from decimal import Decimal

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from tradeassure.core.money import MINOR_UNITS

# Secrets that ship in the code (base settings, Dockerfile, docs): never valid in production.
_DEFAULT_SECRETS = {
    "SECRET_KEY": (
        "dev-only-insecure-key-change-me-in-production-0123456789abcdefghijklmnop",
        "collectstatic-only",
    ),
    "SANDBOX_WEBHOOK_SECRET": ("sandbox-webhook-secret-dev-only-0123456789",),
}


def _currency_tables() -> dict[str, tuple[dict, str]]:
    """Every per-currency table in the settings: name -> (table, what its values must be)."""
    tables: dict[str, tuple[dict, str]] = {
        "TRADE_ASSURANCE['FEE_FLAT']": (
            settings.TRADE_ASSURANCE.get("FEE_FLAT", {}),
            "exact_non_negative",
        ),
        "SUPPLIERS['USD_REFERENCE_RATES']": (
            getattr(settings, "SUPPLIERS", {}).get("USD_REFERENCE_RATES", {}),
            "positive",
        ),
    }
    disputes = getattr(settings, "DISPUTES", {})
    if "INSPECTION_FEE" in disputes:
        tables["DISPUTES['INSPECTION_FEE']"] = (disputes["INSPECTION_FEE"], "exact_positive")
    return tables


def currency_table_problems() -> list[Error]:
    """The currencies the product takes must be defined the same everywhere: decimals
    (core.money.MINOR_UNITS), the flat release fee, the USD reference rate (limits), the
    suggested inspection fee; each value a Decimal that fits its currency's decimals."""
    errors: list[Error] = []
    supported = list(getattr(settings, "SUPPORTED_CURRENCIES", []))

    def error(message: str, hint: str) -> None:
        errors.append(Error(message, hint=hint, id="tradeassure.E106"))

    if not supported:
        error("SUPPORTED_CURRENCIES is empty.", "List the ISO 4217 codes the product takes.")
    for code in supported:
        if code not in MINOR_UNITS:
            error(
                f"SUPPORTED_CURRENCIES has {code!r}, which has no decimals defined.",
                "Add it to tradeassure.core.money.MINOR_UNITS, or drop it.",
            )
    for name, (table, rule) in _currency_tables().items():
        for code in supported:
            if code not in table:
                error(f"{name} has no value for {code}.", f"Add {code} to {name}.")
        for code, value in table.items():
            if code not in supported:
                error(
                    f"{name} has {code!r}, which is not in SUPPORTED_CURRENCIES.",
                    f"Remove it, or add {code} to SUPPORTED_CURRENCIES.",
                )
                continue
            if not isinstance(value, Decimal) or not value.is_finite():
                error(f"{name}[{code!r}] is {value!r}, not a Decimal.", "Use Decimal('…').")
                continue
            if rule in ("positive", "exact_positive"):
                if value <= 0:
                    error(f"{name}[{code!r}] must be more than 0.", f"Fix {name}.")
            elif value < 0:
                error(f"{name}[{code!r}] must not be negative.", f"Fix {name}.")
            places = MINOR_UNITS.get(code)
            if (
                rule.startswith("exact")
                and places is not None
                and value != value.quantize(Decimal(1).scaleb(-places))
            ):
                error(
                    f"{name}[{code!r}] is {value}, but {code} has {places} decimal places.",
                    f"Round it to {places} decimal places.",
                )
    rate = settings.TRADE_ASSURANCE.get("FEE_RATE")
    if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate < 1:
        error(f"TRADE_ASSURANCE['FEE_RATE'] is {rate!r}.", "A Decimal from 0 to below 1.")
    return errors


def production_payment_problems() -> tuple[list[Error], list[Warning]]:
    errors: list[Error] = currency_table_problems()
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


@register()
def currency_tables_check(app_configs=None, **kwargs) -> list:
    """Outside production too: inconsistent currency tables break money anywhere."""
    if getattr(settings, "TRADEASSURE_PRODUCTION", False):
        return []  # reported by production_payments_check
    return currency_table_problems()
