"""The currency tables check: every currency the product takes has its decimals, fee, reference
rate and inspection fee defined, each fitting the currency's decimals (production refuses to
start otherwise: tests/test_deploy.py)."""

from decimal import Decimal

import pytest

from payments.checks import currency_table_problems, production_payment_problems


def messages() -> list[str]:
    return [error.msg for error in currency_table_problems()]


def test_the_shipped_tables_are_consistent():
    assert currency_table_problems() == []


def test_a_supported_currency_without_decimals_or_fee_is_reported(settings):
    # given a currency added to SUPPORTED_CURRENCIES only
    settings.SUPPORTED_CURRENCIES = [*settings.SUPPORTED_CURRENCIES, "CHF"]

    # then each table that lacks it is named
    found = messages()
    assert "SUPPORTED_CURRENCIES has 'CHF', which has no decimals defined." in found
    assert "TRADE_ASSURANCE['FEE_FLAT'] has no value for CHF." in found
    assert "SUPPLIERS['USD_REFERENCE_RATES'] has no value for CHF." in found
    assert "DISPUTES['INSPECTION_FEE'] has no value for CHF." in found


@pytest.mark.parametrize(
    ("table", "code", "value", "expected"),
    [
        ("FEE_FLAT", "JPY", Decimal("150.5"), "is 150.5, but JPY has 0 decimal places"),
        ("FEE_FLAT", "USD", Decimal("-1"), "must not be negative"),
        ("FEE_FLAT", "USD", 1.0, "not a Decimal"),
        ("FEE_FLAT", "XYZ", Decimal("1"), "'XYZ', which is not in SUPPORTED_CURRENCIES"),
    ],
)
def test_a_bad_fee_entry_is_reported(settings, table, code, value, expected):
    settings.TRADE_ASSURANCE = {
        **settings.TRADE_ASSURANCE,
        "FEE_FLAT": {**settings.TRADE_ASSURANCE["FEE_FLAT"], code: value},
    }
    assert any(expected in message for message in messages()), messages()


def test_rates_inspection_fees_and_the_fee_rate_are_checked(settings):
    settings.SUPPLIERS = {
        **settings.SUPPLIERS,
        "USD_REFERENCE_RATES": {**settings.SUPPLIERS["USD_REFERENCE_RATES"], "EUR": Decimal(0)},
    }
    settings.DISPUTES = {
        **settings.DISPUTES,
        "INSPECTION_FEE": {**settings.DISPUTES["INSPECTION_FEE"], "JPY": Decimal("45000.50")},
    }
    settings.TRADE_ASSURANCE = {**settings.TRADE_ASSURANCE, "FEE_RATE": Decimal("1.2")}
    found = messages()
    assert "SUPPLIERS['USD_REFERENCE_RATES']['EUR'] must be more than 0." in found
    assert any("INSPECTION_FEE']['JPY'] is 45000.50, but JPY has 0" in m for m in found)
    assert any(m.startswith("TRADE_ASSURANCE['FEE_RATE']") for m in found)


def test_the_production_check_includes_the_currency_tables(settings):
    settings.SUPPORTED_CURRENCIES = [*settings.SUPPORTED_CURRENCIES, "CHF"]
    errors, _ = production_payment_problems()
    assert "tradeassure.E106" in {error.id for error in errors}
