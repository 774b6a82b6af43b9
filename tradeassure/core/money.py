"""Money: Decimal amounts in ISO 4217 currencies, and the one rounding rule the product uses."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

# Digits after the decimal point, per supported currency (ISO 4217 minor units).
MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CNY": 2,
    "HKD": 2,
    "JPY": 0,
    "AUD": 2,
    "CAD": 2,
    "SGD": 2,
}

CURRENCY_CHOICES = [(code, code) for code in MINOR_UNITS]

# Model fields hold amounts with two decimal places, enough for every supported currency.
AMOUNT_MAX_DIGITS = 14
AMOUNT_DECIMAL_PLACES = 2


class CurrencyError(ValueError):
    """An amount in a currency the product does not support, or with more precision than it has."""


def check_currency(currency: str) -> str:
    if currency not in MINOR_UNITS or currency not in settings.SUPPORTED_CURRENCIES:
        raise CurrencyError(f"Unsupported currency: {currency!r}.")
    return currency


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS[check_currency(currency)])


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit: the only rounding the product does."""
    if not isinstance(amount, Decimal):
        raise TypeError("Money amounts are Decimal, never float.")
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def is_exact(amount: Decimal, currency: str) -> bool:
    """Whether the amount is already expressible in the currency (no sub-minor-unit digits)."""
    return round_money(amount, currency) == amount


def release_fee(released: Decimal, currency: str) -> Decimal:
    """The supplier's fee on a release: FEE_RATE of the released amount plus the flat fee.

    Charged only on what is released, never on a refunded part, and never more than the release.
    """
    if released <= 0:
        return Decimal(0).quantize(quantum(currency))
    rules = settings.TRADE_ASSURANCE
    fee = round_money(released * rules["FEE_RATE"] + rules["FEE_FLAT"][currency], currency)
    return min(fee, round_money(released, currency))


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        check_currency(self.currency)
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money amounts are Decimal, never float.")

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def format_money(amount: Decimal, currency: str) -> str:
    places = MINOR_UNITS.get(currency, 2)
    return f"{currency} {amount:,.{places}f}"
