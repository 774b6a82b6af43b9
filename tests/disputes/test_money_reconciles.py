"""The supplier's Money page adds up: every credit and debit is a row, and the rows sum to
"Available" to the cent, also after a decision that charged the supplier an inspection fee."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from disputes import services
from disputes.models import Inspection, Remedy
from payments.services import escrow_release
from tests.disputes.factories import inspector_for, pay_inspection_fee, pdf, under_review
from tests.payments.factories import EscrowFactory, pay_by_card

pytestmark = pytest.mark.django_db


def _amounts(body: str) -> list[Decimal]:
    return [Decimal(value) for value in re.findall(r'data-amount="(-?[0-9.]+)"', body)]


def _available(body: str) -> Decimal:
    match = re.search(r'data-available="(-?[0-9.]+)"', body)
    assert match, "no Available line"
    return Decimal(match.group(1))


def test_rows_sum_to_available_after_an_inspection_fee_charged_to_the_supplier(
    client, delivered, mediator, django_capture_on_commit_callbacks
):
    # given the supplier already has USD 5,000 released from another order
    other = EscrowFactory(supplier_organisation=delivered.order.supplier.organisation)
    with django_capture_on_commit_callbacks(execute=True):
        pay_by_card(other, Decimal("5000.00"))
    escrow_release(
        escrow_reference=other.reference, amount=Decimal("5000.00"), idempotency_key="other"
    )
    # and a quality dispute where the inspection (fee USD 300) finds the goods do not conform
    dispute = under_review(delivered, mediator)
    inspector = inspector_for()
    inspection = services.dispute_order_inspection(
        dispute=dispute,
        actor=mediator,
        organisation=inspector.organisation,
        instructions="Drop-test 20 units.",
        fee_amount=Decimal("300.00"),
    )
    pay_inspection_fee(inspection, delivered.buyer)
    services.inspection_report_submit(
        inspection=Inspection.objects.get(pk=inspection.pk),
        actor=inspector,
        verdict=Inspection.Verdict.DOES_NOT_CONFORM,
        findings="14 of 20 cracked.",
        files=[pdf("report.pdf")],
    )
    # when the mediator decides a partial refund (the supplier at fault pays the fee)
    services.dispute_decide(
        dispute=dispute,
        actor=mediator,
        terms=services.OutcomeTerms(remedy=Remedy.PARTIAL_REFUND, refund_amount=Decimal("400")),
        reason="The inspection confirms the defect.",
    )

    # then the supplier's Money page itemises every movement and the rows add up to Available
    client.force_login(delivered.supplier_user)
    body = client.get(reverse("payments:money")).content.decode()
    # 5,000 - 151 fee, + 1,000 released - 31 fee, - 300 inspection fee = 5,518.00
    assert _available(body) == Decimal("5518.00")
    assert sum(_amounts(body)) == _available(body)
    assert "Inspection fee charged" in body
    assert "USD -300.00" in body
    assert body.count("Platform fee") == 2
    # and the per-order statement names the inspection charge in its net
    assert "Inspection fee charged" in body and "USD 669.00" in body  # 1,000 - 31 - 300
    # and no internal escrow reference leaks into the page
    assert delivered.order.escrow_reference not in body
    assert delivered.order.reference in body
