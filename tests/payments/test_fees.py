from decimal import Decimal

import pytest

from payments import selectors, services
from tests.payments.factories import EscrowFactory, pay_by_card
from tradeassure.core.money import release_fee, round_money

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("released", "currency", "fee"),
    [
        (Decimal("1000.00"), "USD", Decimal("31.00")),  # 3% = 30.00, + 1.00 flat
        (Decimal("333.33"), "USD", Decimal("11.00")),  # 9.9999 + 1.00 = 10.9999 -> 11.00
        (Decimal("16.50"), "USD", Decimal("1.50")),  # 0.495 + 1.00 = 1.495 -> 1.50 (half-up)
        (Decimal("0.50"), "USD", Decimal("0.50")),  # never more than the release
        (Decimal("100000"), "JPY", Decimal("3150")),  # 3000 + 150 flat
        (Decimal("12345"), "JPY", Decimal("520")),  # 370.35 + 150 = 520.35 -> 520
        (Decimal("12350"), "JPY", Decimal("521")),  # 370.5 + 150 = 520.5 -> 521 (half-up)
        (Decimal("1000.00"), "CNY", Decimal("37.00")),  # 30.00 + 7.00 flat
    ],
)
def test_release_fee_examples(released, currency, fee):
    # given a release of `released`; when the fee is computed; then it is the worked example
    assert release_fee(released, currency) == fee
    assert release_fee(released, currency) == round_money(release_fee(released, currency), currency)


def test_round_money_is_half_up_to_minor_unit():
    assert round_money(Decimal("0.005"), "USD") == Decimal("0.01")
    assert round_money(Decimal("0.0049"), "USD") == Decimal("0.00")
    assert round_money(Decimal("0.5"), "JPY") == Decimal("1")
    assert round_money(Decimal("2.5"), "JPY") == Decimal("3")


def test_refunded_part_carries_no_fee(run_after_commit):
    # given 1,000.00 USD held
    escrow = EscrowFactory(currency="USD")
    run_after_commit(pay_by_card, escrow, Decimal("1000.00"))
    # when 400.00 is refunded and the remaining 600.00 released
    run_after_commit(
        services.escrow_refund,
        escrow_reference=escrow.reference,
        amount=Decimal("400.00"),
        idempotency_key="refund-1",
        reason="partial refund agreed",
    )
    run_after_commit(
        services.escrow_release,
        escrow_reference=escrow.reference,
        amount=Decimal("600.00"),
        idempotency_key="release-1",
    )
    # then the fee is 3% of 600 + 1.00 = 19.00, nothing on the refunded 400
    summary = selectors.escrow_summary(escrow_reference=escrow.reference)
    assert summary.fees == Decimal("19.00")
    assert summary.supplier_net == Decimal("581.00")
    assert selectors.supplier_balances(organisation=escrow.supplier_organisation)[0].available == (
        Decimal("581.00")
    )


def test_jpy_release_fee_in_the_ledger(run_after_commit):
    # given 250,000 JPY held
    escrow = EscrowFactory(currency="JPY")
    run_after_commit(pay_by_card, escrow, Decimal("250000"))
    # when 123,457 JPY is released
    run_after_commit(
        services.escrow_release,
        escrow_reference=escrow.reference,
        amount=Decimal("123457"),
        idempotency_key="jpy-release",
    )
    # then the fee is 3,703.71 + 150 = 3,853.71 -> 3,854 JPY, no fractional yen anywhere
    summary = selectors.escrow_summary(escrow_reference=escrow.reference)
    assert summary.fees == Decimal("3854")
    assert summary.supplier_net == Decimal("119603")
    assert summary.held == Decimal("126543")
    assert selectors.ledger_verify().ok


def test_jpy_amount_with_decimals_is_refused(run_after_commit):
    escrow = EscrowFactory(currency="JPY")
    run_after_commit(pay_by_card, escrow, Decimal("1000"))
    with pytest.raises(services.ValidationFailed) as error:
        services.escrow_release(
            escrow_reference=escrow.reference, amount=Decimal("10.5"), idempotency_key="k"
        )
    assert error.value.code == "invalid_amount"
    assert selectors.escrow_summary(escrow_reference=escrow.reference).held == Decimal("1000")
