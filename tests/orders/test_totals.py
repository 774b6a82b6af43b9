"""Totals are computed, never typed: properties over many random contracts (no database)."""

from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from orders.services import ContractTerms, LineItemTerms, contract_totals
from tradeassure.core import clock
from tradeassure.core.money import MINOR_UNITS, round_money

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999"), places=3)
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2)


@given(
    currency=st.sampled_from(sorted(MINOR_UNITS)),
    lines=st.lists(st.tuples(quantities, prices), min_size=1, max_size=8),
    fee=st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=2),
    share=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1"), places=2),
)
def test_totals_add_up_in_the_currencys_minor_unit(currency, lines, fee, share):
    items = [
        LineItemTerms(
            description="x", quality_requirements="y", quantity=q, unit="pcs", unit_price=p
        )
        for q, p in lines
    ]
    fee = round_money(fee, currency)
    provisional = sum((round_money(q * p, currency) for q, p in lines), Decimal(0)) + fee
    initial = max(round_money(provisional * share, currency), round_money(Decimal(1), currency))
    terms = ContractTerms(
        currency=currency,
        coverage="post_delivery",
        items=items,
        shipment_deadline=clock.now() + timedelta(days=30),
        incoterm="FOB",
        destination="Rotterdam",
        shipping_method="sea",
        shipping_fee=fee,
        initial_payment_amount=initial,
    )
    totals = contract_totals(terms=terms)
    # every line is quantity x price rounded half-up once; the total is their sum plus the fee
    assert totals.line_totals == [round_money(q * p, currency) for q, p in lines]
    assert totals.total == sum(totals.line_totals, Decimal(0)) + totals.shipping_fee
    assert totals.initial_payment_amount + totals.balance_amount == totals.total
    # and nothing has more digits than the currency allows (JPY: none)
    for amount in (*totals.line_totals, totals.total, totals.balance_amount):
        assert -amount.as_tuple().exponent <= MINOR_UNITS[currency]
