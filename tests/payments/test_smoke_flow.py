from decimal import Decimal

import pytest

from payments import selectors, services
from payments.models import Payment, Refund
from tests.payments.factories import EscrowFactory, pay_by_card

pytestmark = pytest.mark.django_db


def test_card_payment_release_refund_flow(run_after_commit):
    # given an open escrow paid by card
    escrow = EscrowFactory(currency="USD")
    payment = run_after_commit(pay_by_card, escrow, Decimal("1000.00"))
    # when part is released and part refunded
    run_after_commit(
        services.escrow_release,
        escrow_reference=escrow.reference,
        amount=Decimal("600.00"),
        idempotency_key="r1",
    )
    run_after_commit(
        services.escrow_refund,
        escrow_reference=escrow.reference,
        amount=Decimal("400.00"),
        idempotency_key="f1",
        reason="short shipment",
    )
    # then the summary shows it and the ledger checks out
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    summary = selectors.escrow_summary(escrow_reference=escrow.reference)
    assert summary.captured == Decimal("1000.00")
    assert summary.released == Decimal("600.00")
    assert summary.fees == Decimal("19.00")
    assert summary.refunded == Decimal("400.00")
    assert summary.held == Decimal("0.00")
    assert Refund.objects.get().status == Refund.Status.COMPLETED
    report = selectors.ledger_verify()
    assert report.ok, report.violations
